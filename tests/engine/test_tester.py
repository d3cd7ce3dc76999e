"""Multi-view testing (spec §9.5): the ensemble against a direct computation, incomplete videos, strict loading."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

from vov3d.checkpoint import CheckpointError, save_checkpoint
from vov3d.engine.tester import test as run_test


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """A checkpoint after one short epoch of training (weights that are not uniform)."""
    from vov3d.engine.trainer import train

    out = tmp_path_factory.mktemp("trained")
    train(tiny.cfg(out, SOLVER__MAX_EPOCH=1, TRAIN__EVAL_PERIOD=5, TEST__ENABLE=False), progress=False)
    return out / "checkpoints" / "checkpoint_epoch_00001.pyth"


def _hand_ensemble(cfg, checkpoint) -> tuple[torch.Tensor, list[int]]:
    """Sum over each video's views of the plain model's softmax, item by item."""
    from vov3d.config import builders

    model = builders.build_model(cfg)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["model_state"])
    model.eval()
    dataset = builders.build_dataset(cfg, "test")
    views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    sums = torch.zeros(len(dataset) // views, cfg.MODEL.NUM_CLASSES, dtype=torch.float64)
    with torch.no_grad():
        for i in range(len(dataset)):
            clip, _label, index, _meta = dataset[i]
            sums[index // views] += model(clip[None]).softmax(dim=1)[0].double()
    return sums, dataset.labels


@pytest.mark.parametrize("backend", ["eager", "auto"])
def test_ensemble_is_the_sum_of_view_softmaxes(tiny, trained, tmp_path, capsys, backend):
    from vov3d.engine.predictions import read_predictions

    out = tmp_path / "test"
    cfg = tiny.cfg(out, TRAIN__ENABLE=False, TEST__CHECKPOINT_FILE_PATH=trained, TRAIN__BACKEND=backend)
    result = run_test(cfg, progress=False)
    expected, labels = _hand_ensemble(cfg, trained)
    assert result["videos"] == 4 and result["views_per_video"] == 2 and result["incomplete_videos"] == []
    records = read_predictions(out / "predictions.jsonl")
    assert len(records) == 4
    for i, record in enumerate(records):
        record = record if isinstance(record, dict) else vars(record)
        assert record["label"] == labels[i]
        ids, scores = record["top_ids"], record["top_scores"]
        assert len(ids) == 5
        # the file's scores are the hand ensemble's at the file's classes, and the 5 largest of it
        torch.testing.assert_close(torch.tensor(scores, dtype=torch.float64), expected[i, ids], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(torch.tensor(sorted(scores, reverse=True), dtype=torch.float64),
                                   expected[i].topk(5).values, rtol=1e-4, atol=1e-5)
    top1 = 100.0 * sum(int(expected[i].argmax() == labels[i]) for i in range(4)) / 4
    assert result["top1_acc"] == pytest.approx(top1)
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "top-1 accuracy" in printed and f"{top1:.2f} %" in printed


def test_single_view_and_an_undecodable_view_is_reported(tiny, trained, tmp_path, caplog):
    data = tmp_path / "kinetics"
    shutil.copytree(tiny.data("kinetics"), data)
    rows = (data / "test.csv").read_text().splitlines()
    victim = data / rows[1].split()[0]
    victim.write_bytes(b"\x00" * 100)  # not a video
    from vov3d.config import load_config

    out = tmp_path / "test"
    cfg = load_config(tiny.yaml, ["DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR", str(out), "TRAIN.ENABLE", "False",
                                  "TEST.CHECKPOINT_FILE_PATH", str(trained), "TEST.NUM_ENSEMBLE_VIEWS", "1",
                                  "TEST.NUM_SPATIAL_CROPS", "1"])
    with caplog.at_level(logging.INFO, logger="vov3d"):
        result = run_test(cfg, progress=False)
    assert result["views_per_video"] == 1 and result["videos"] == 4
    assert result["incomplete_videos"] == [1]
    assert victim.name in caplog.text and "incomplete" in caplog.text
    final = [json.loads(line.split("json_stats: ", 1)[1]) for line in caplog.text.splitlines()
             if "test_final" in line]
    assert final and set(final[0]) == {"split", "top1_acc", "top5_acc"}


def test_checkpoint_with_another_classifier_is_refused(tiny, tmp_path):
    from vov3d.config import builders

    cfg = tiny.cfg(tmp_path / "a", MODEL__NUM_CLASSES=400)
    path = save_checkpoint(tmp_path / "k400.pyth", builders.build_model(cfg))
    cfg = tiny.cfg(tmp_path / "b", TRAIN__ENABLE=False, TEST__CHECKPOINT_FILE_PATH=path)
    with pytest.raises(CheckpointError, match="k400.pyth"):
        run_test(cfg, progress=False)


def test_nothing_to_test_is_an_error_not_random_weights(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path / "empty", TRAIN__ENABLE=False)
    with pytest.raises(CheckpointError, match="TEST.CHECKPOINT_FILE_PATH"):
        run_test(cfg, progress=False)
