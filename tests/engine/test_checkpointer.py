"""The checkpointer's rules (spec §9.4, §11.9): resume from the newest valid file, fine-tuning, test loading."""

from __future__ import annotations

import logging

import pytest
import torch

from vov3d.checkpoint import CheckpointError, save_checkpoint
from vov3d.engine import checkpointer
from vov3d.models import create_model

NUM_CLASSES = 5


def _model(name: str = "vov3d_m", num_classes: int = NUM_CLASSES, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, num_classes=num_classes)


def _optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)


def _stepped_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """An optimizer with momentum buffers (one real step on a tiny clip)."""
    opt = _optimizer(model)
    model.train()
    loss = model(torch.randn(2, 3, 4, 32, 32)).logsumexp(dim=1).mean()
    loss.backward()
    opt.step()
    return opt


def _write(output_dir, model, opt, epoch, iters=0):
    path = (checkpointer.iter_checkpoint_path(output_dir, epoch, iters) if iters
            else checkpointer.epoch_checkpoint_path(output_dir, epoch))
    state = {"epoch": epoch if iters else epoch + 1, "iter": iters}
    return checkpointer.write_checkpoint(path, model, opt, finished_epoch=epoch - 1 if iters else epoch,
                                         cfg_yaml="A: 1\n", train_state=state)


def test_names_follow_the_original_and_sort_by_position(tmp_path):
    assert checkpointer.epoch_checkpoint_path(tmp_path, 0).name == "checkpoint_epoch_00001.pyth"
    assert checkpointer.epoch_checkpoint_path(tmp_path, 9).parent == tmp_path / "checkpoints"
    model = _model()
    _write(tmp_path, model, None, 0)
    _write(tmp_path, model, None, 1, iters=3)  # epoch 2 (0-based 1), 3 iterations done
    _write(tmp_path, model, None, 1)
    names = [p.name for p in checkpointer.list_checkpoints(tmp_path)]
    # the end of epoch 2 replaced the mid-epoch file of epoch 2 (only the newest mid-epoch file is kept)
    assert names == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth"]
    _write(tmp_path, model, None, 2, iters=4)
    names = [p.name for p in checkpointer.list_checkpoints(tmp_path)]
    assert names[-1] == "checkpoint_epoch_00002_iter_000004.pyth"


def test_file_is_in_the_original_format(tmp_path):
    model = _model()
    opt = _stepped_optimizer(model)
    path = _write(tmp_path, model, opt, 4)
    obj = torch.load(path, weights_only=True)
    assert {"model_state", "optimizer_state", "epoch", "cfg"} <= set(obj)
    assert obj["epoch"] == 4 and obj["cfg"] == "A: 1\n"
    assert not any(k.startswith("module.") for k in obj["model_state"])


def test_auto_resume_restores_model_optimizer_and_position(tmp_path):
    model = _model(seed=1)
    opt = _stepped_optimizer(model)
    _write(tmp_path, model, opt, 0)
    _write(tmp_path, model, opt, 1, iters=7)
    fresh = _model(seed=2)
    fresh_opt = _optimizer(fresh)
    start = checkpointer.resolve_train_start(fresh, fresh_opt, output_dir=tmp_path, auto_resume=True,
                                             finetune_path="", model_name="vov3d_m")
    assert (start.epoch, start.iter, start.resumed) == (1, 7, True)
    assert start.source.endswith("checkpoint_epoch_00001_iter_000007.pyth")
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    saved = [s["momentum_buffer"] for s in opt.state_dict()["state"].values()]
    restored = [s["momentum_buffer"] for s in fresh_opt.state_dict()["state"].values()]
    assert len(restored) == len(saved) > 0 and sum(float(b.abs().sum()) for b in restored) > 0
    assert all(torch.equal(a, b) for a, b in zip(saved, restored))


def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    model = _model(seed=1)
    _write(tmp_path, model, _optimizer(model), 0)
    newest = _write(tmp_path, _model(seed=3), _optimizer(model), 1)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # a crash while copying, a full disk...
    fresh = _model(seed=2)
    with caplog.at_level(logging.WARNING, logger="vov3d.engine.checkpointer"):
        start = checkpointer.resolve_train_start(fresh, _optimizer(fresh), output_dir=tmp_path, auto_resume=True,
                                                 finetune_path="", model_name="vov3d_m")
    assert start.source.endswith("checkpoint_epoch_00001.pyth")
    assert start.epoch == 1
    assert str(newest) in caplog.text
    assert torch.equal(fresh.state_dict()["head.projection.weight"], model.state_dict()["head.projection.weight"])


def test_only_unreadable_checkpoints_is_an_error(tmp_path):
    path = checkpointer.epoch_checkpoint_path(tmp_path, 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not a checkpoint")
    model = _model()
    with pytest.raises(CheckpointError, match="AUTO_RESUME"):
        checkpointer.resolve_train_start(model, _optimizer(model), output_dir=tmp_path, auto_resume=True,
                                         finetune_path="", model_name="vov3d_m")


def test_finetuning_takes_neither_epoch_nor_optimizer_and_reinitialises_the_classifier(tmp_path, caplog):
    source = _model(num_classes=400, seed=1)
    opt = _stepped_optimizer(source)
    path = save_checkpoint(tmp_path / "k400.pyth", source, opt, epoch=255, cfg="x: 1\n")
    model = _model(num_classes=NUM_CLASSES, seed=2)
    fresh_projection = model.state_dict()["head.projection.weight"].clone()
    model_opt = _optimizer(model)
    with caplog.at_level(logging.INFO, logger="vov3d.engine.checkpointer"):
        start = checkpointer.resolve_train_start(model, model_opt, output_dir=tmp_path / "run", auto_resume=True,
                                                 finetune_path=str(path), model_name="vov3d_m")
    assert (start.epoch, start.iter, start.resumed) == (0, 0, False)
    assert model_opt.state_dict()["state"] == {}  # no momentum taken over
    assert torch.equal(model.state_dict()["head.projection.weight"], fresh_projection)
    assert torch.equal(model.state_dict()["s1.pathway0_stem.conv_xy.weight"],
                       source.state_dict()["s1.pathway0_stem.conv_xy.weight"])
    assert "head.projection.weight" in caplog.text and "re-initialised" in caplog.text


def test_finetuning_from_another_model_is_an_error_naming_the_file(tmp_path):
    path = save_checkpoint(tmp_path / "x3d.pyth", _model("x3d_m", num_classes=NUM_CLASSES))
    model = _model()
    with pytest.raises(CheckpointError) as info:
        checkpointer.resolve_train_start(model, _optimizer(model), output_dir=tmp_path / "run", auto_resume=True,
                                         finetune_path=str(path), model_name="vov3d_m")
    assert str(path) in str(info.value)
    assert "holds a x3d_m" in str(info.value) and "builds vov3d_m" in str(info.value)


def test_vov3d_m_definitions_are_told_apart(tmp_path):
    path = save_checkpoint(tmp_path / "v2.pyth", _model("vov3d_m_v2", num_classes=NUM_CLASSES))
    with pytest.raises(CheckpointError, match="holds a vov3d_m_v2; the config builds vov3d_m"):
        checkpointer.load_model_weights(_model(), path, torch.load(path, weights_only=True), "vov3d_m")


def test_load_what_fits_loads_the_fitting_tensors(tmp_path):
    source = _model(seed=1)
    state = source.state_dict()
    state["s2.pathway0_res0.branch2.extra"] = torch.zeros(3)  # an unexpected tensor
    path = tmp_path / "odd.pyth"
    torch.save({"model_state": state}, path)
    model = _model(seed=2)
    with pytest.raises(CheckpointError, match=str(path)):
        checkpointer.resolve_train_start(model, _optimizer(model), output_dir=tmp_path / "run", auto_resume=False,
                                         finetune_path=str(path), model_name="vov3d_m")
    start = checkpointer.resolve_train_start(model, _optimizer(model), output_dir=tmp_path / "run",
                                             auto_resume=False, finetune_path=str(path), model_name="vov3d_m",
                                             load_what_fits=True)
    assert start.epoch == 0
    assert torch.equal(model.state_dict()["head.projection.weight"], source.state_dict()["head.projection.weight"])


def test_test_checkpoint_order_and_no_silent_random_weights(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match="TEST.CHECKPOINT_FILE_PATH"):
        checkpointer.resolve_test_checkpoint(test_path="", output_dir=run, train_path="")
    assert checkpointer.resolve_test_checkpoint(test_path="", output_dir=run, train_path="ft.pyth").name == "ft.pyth"
    model = _model()
    _write(run, model, None, 0)
    newest = _write(run, model, None, 1)
    assert checkpointer.resolve_test_checkpoint(test_path="", output_dir=run, train_path="ft.pyth") == newest
    assert checkpointer.resolve_test_checkpoint(test_path="t.pyth", output_dir=run, train_path="").name == "t.pyth"


def test_auto_resume_from_a_checkpoint_written_by_the_original_code(tmp_path):
    """The original's file has no train_state: the next epoch is its `epoch` + 1, from its first iteration."""
    model = _model(seed=1)
    opt = _stepped_optimizer(model)
    path = checkpointer.epoch_checkpoint_path(tmp_path, 4)
    save_checkpoint(path, model, opt, epoch=4, cfg="TRAIN:\n  ENABLE: True\n")
    fresh = _model(seed=2)
    start = checkpointer.resolve_train_start(fresh, _optimizer(fresh), output_dir=tmp_path, auto_resume=True,
                                             finetune_path="", model_name="vov3d_m")
    assert (start.epoch, start.iter, start.resumed) == (5, 0, True)


def test_auto_resume_with_a_checkpoint_of_another_model_names_the_file(tmp_path):
    path = _write(tmp_path, _model("vov3d_m_v2"), None, 0)
    model = _model()
    with pytest.raises(CheckpointError) as info:
        checkpointer.resolve_train_start(model, _optimizer(model), output_dir=tmp_path, auto_resume=True,
                                         finetune_path="", model_name="vov3d_m")
    assert str(path) in str(info.value) and "holds a vov3d_m_v2" in str(info.value)
