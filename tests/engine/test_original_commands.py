"""The original README's four command lines, as they are, through ``python tools/run_net.py``:

    train:       --cfg C DATA.PATH_TO_DATA_DIR D NUM_GPUS n
    fine-tune:   --cfg C DATA.PATH_TO_DATA_DIR D TRAIN.CHECKPOINT_FILE_PATH K NUM_GPUS n
    test:        --cfg C DATA.PATH_TO_DATA_DIR D TEST.CHECKPOINT_FILE_PATH K TRAIN.ENABLE False
    single view: ... TEST.NUM_ENSEMBLE_VIEWS 1 TEST.NUM_SPATIAL_CROPS 1

on datasets in the original formats written by the test (Kinetics csv + mp4; SSv2 json + JPEG
frames), with NUM_GPUS 0 (the CPU) and a tiny config in the original's key layout.
"""

from __future__ import annotations

import subprocess

import torch

from vov3d.checkpoint import save_checkpoint

SSV2_FINETUNE_YAML = """\
# The SSv2 fine-tuning recipe's shape (spec §7.3: steps_with_relative_lrs, short warm-up), tiny.
_BASE_: {base}
TRAIN:
  DATASET: ssv2
  EVAL_PERIOD: 2
TEST:
  DATASET: ssv2
DATA:
  INV_UNIFORM_SAMPLE: True
  RANDOM_FLIP: False
  REVERSE_INPUT_CHANNEL: True
SOLVER:
  BASE_LR: 0.05
  LR_POLICY: steps_with_relative_lrs
  STEPS: [0]
  LRS: [1]
  MAX_EPOCH: 1
  WARMUP_EPOCHS: 0.19
  WARMUP_START_LR: 0.0001
"""


def _start(tiny, *args: str) -> subprocess.Popen:
    argv = [tiny.python, str(tiny.repo / "tools" / "run_net.py"), *args]
    return subprocess.Popen(argv, env=tiny.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(child: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def test_readme_command_lines(tiny, tmp_path):
    kinetics, ssv2 = tiny.data("kinetics"), tiny.data("ssv2")
    assert (kinetics / "train.csv").is_file() and (ssv2 / "something-something-v2-train.json").is_file()

    # 2.'s input: a "K400" file: 400 classes, a finished 256-epoch run with its optimizer state
    from vov3d.config import builders

    source_cfg = tiny.cfg(tmp_path / "unused", MODEL__NUM_CLASSES=400)
    source = builders.build_model(source_cfg)
    optimizer = torch.optim.SGD(source.parameters(), lr=0.1, momentum=0.9)
    k400 = save_checkpoint(tmp_path / "vov3d_M_k400.pth", source, optimizer, epoch=255, cfg="")
    recipe = tmp_path / "vov3d_M_F32_finetune.yaml"
    recipe.write_text(SSV2_FINETUNE_YAML.format(base=tiny.yaml))

    # 1. train from scratch (Kinetics csv), then test as TEST.ENABLE says; and, at the same time,
    # 2. fine-tune on SSv2 (json + frames) from the K400 file
    scratch, finetuned = tmp_path / "scratch", tmp_path / "finetune"
    first = _start(tiny, "--cfg", str(tiny.yaml), "DATA.PATH_TO_DATA_DIR", str(kinetics), "NUM_GPUS", "0",
                   "OUTPUT_DIR", str(scratch), "SOLVER.MAX_EPOCH", "1")
    second = _start(tiny, "--cfg", str(recipe), "DATA.PATH_TO_DATA_DIR", str(ssv2),
                    "TRAIN.CHECKPOINT_FILE_PATH", str(k400), "NUM_GPUS", "0", "OUTPUT_DIR", str(finetuned),
                    "TEST.ENABLE", "False")
    done = _finish(first)
    trained = scratch / "checkpoints" / "checkpoint_epoch_00001.pyth"
    assert trained.is_file() and (scratch / "config.yaml").is_file() and (scratch / "predictions.jsonl").is_file()
    assert "top-1 accuracy" in done.stdout
    _finish(second)
    log = (finetuned / "log.txt").read_text()
    assert "head.projection.weight" in log and "re-initialised" in log
    assert "not taken over" in log  # the file's epoch 255 and optimizer state
    ft = torch.load(finetuned / "checkpoints" / "checkpoint_epoch_00001.pyth", weights_only=True)
    assert ft["epoch"] == 0 and ft["model_state"]["head.projection.weight"].shape[0] == 12
    loaded = len(source.state_dict()) - 2  # all but head.projection.weight/bias
    assert f"{loaded} tensors loaded; starting at epoch 1" in log

    # 3. test a checkpoint, multi-view (2 x 1 in the tiny config), Kinetics; and at the same time
    # 4. single view, SSv2 json + frames, the fine-tuned checkpoint
    tested, single = tmp_path / "tested", tmp_path / "single"
    third = _start(tiny, "--cfg", str(tiny.yaml), "DATA.PATH_TO_DATA_DIR", str(kinetics),
                   "TEST.CHECKPOINT_FILE_PATH", str(trained), "TRAIN.ENABLE", "False", "NUM_GPUS", "0",
                   "OUTPUT_DIR", str(tested))
    fourth = _start(tiny, "--cfg", str(recipe), "DATA.PATH_TO_DATA_DIR", str(ssv2),
                    "TEST.CHECKPOINT_FILE_PATH", str(finetuned / "checkpoints" / "checkpoint_epoch_00001.pyth"),
                    "TRAIN.ENABLE", "False", "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1",
                    "NUM_GPUS", "0", "OUTPUT_DIR", str(single))
    done = _finish(third)
    assert "2 x 1" in done.stdout and str(trained) in done.stdout
    assert not (tested / "checkpoints").exists()  # nothing trained
    done = _finish(fourth)
    assert "1 x 1" in done.stdout
    lines = (single / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 8  # SS "test" = the validation file: the synthetic val + test videos
