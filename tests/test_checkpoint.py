"""Checkpoints: the original PySlowFast file format, bare state dicts, our files, and bad files."""

from __future__ import annotations

import pytest
import torch

import vov3d
from vov3d.checkpoint import CheckpointError, read_checkpoint


def _random_state(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            state[k] = torch.randn(v.shape, generator=g, dtype=v.dtype)
        else:
            state[k] = torch.randint(0, 1000, v.shape, generator=g, dtype=v.dtype)
    return state


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_original_file_format_round_trips_bit_exactly(tmp_path):
    model = vov3d.create_model("vov3d_m_v2", num_classes=174)
    state = _random_state(model)
    original = tmp_path / "checkpoint_epoch_00010.pyth"
    # What PySlowFast's save_checkpoint writes (spec §9.4).
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    torch.save({"epoch": 9, "model_state": state, "optimizer_state": opt.state_dict(), "cfg": "MODEL:\n  NUM_CLASSES: 174\n"},
               original)
    report = vov3d.load_checkpoint(model, original)
    assert report.ok and report.loaded == len(state) and report.epoch == 9
    assert _same(model.state_dict(), state)

    ours = vov3d.save_checkpoint(tmp_path / "ours.pyth", model, opt, epoch=9, cfg="A: 1\n")
    saved = read_checkpoint(ours)
    assert sorted(saved) == ["cfg", "epoch", "model_state", "optimizer_state"]
    assert _same(saved["model_state"], state) and saved["epoch"] == 9 and saved["cfg"] == "A: 1\n"
    assert saved["optimizer_state"]["param_groups"][0]["nesterov"] is True
    assert len(saved["optimizer_state"]["param_groups"][0]["params"]) == len(list(model.parameters()))
    fresh = vov3d.create_model("vov3d_m_v2", num_classes=174)
    vov3d.load_checkpoint(fresh, ours)
    assert _same(fresh.state_dict(), state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch_00010.pyth", "ours.pyth"]  # no temporaries


def test_bare_and_ddp_prefixed_state_dicts_load(tmp_path):
    model = vov3d.create_model("x3d_m", num_classes=10)
    state = _random_state(model, seed=1)
    torch.save({"module." + k: v for k, v in state.items()}, tmp_path / "ddp.pth")
    vov3d.load_checkpoint(model, tmp_path / "ddp.pth")
    assert _same(model.state_dict(), state)
    state2 = _random_state(model, seed=2)
    vov3d.load_checkpoint(model, state2)  # an in-memory bare state dict
    assert _same(model.state_dict(), state2)


def test_finetuning_leaves_out_a_classifier_of_another_size(tmp_path):
    k400 = vov3d.create_model("vov3d_m", num_classes=400)
    state = _random_state(k400)
    torch.save({"model_state": state}, tmp_path / "k400.pyth")
    ssv2 = vov3d.create_model("vov3d_m", num_classes=174)
    init_projection = ssv2.head.projection.weight.clone()
    with pytest.raises(CheckpointError, match="skip_mismatched_classifier=True"):
        vov3d.load_checkpoint(ssv2, tmp_path / "k400.pyth")
    report = vov3d.load_checkpoint(ssv2, tmp_path / "k400.pyth", skip_mismatched_classifier=True)
    assert report.skipped_classifier == ["head.projection.weight", "head.projection.bias"]
    assert torch.equal(ssv2.head.projection.weight, init_projection)
    assert torch.equal(ssv2.s4.pathway0_res1.branch2.c.weight, state["s4.pathway0_res1.branch2.c.weight"])


def test_another_models_checkpoint_is_refused_with_a_report(tmp_path):
    path = tmp_path / "l.pyth"
    vov3d.save_checkpoint(path, vov3d.create_model("vov3d_l", num_classes=174))
    model = vov3d.create_model("vov3d_m_v2", num_classes=174)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        vov3d.load_checkpoint(model, path)
    message = str(err.value)
    assert str(path) in message
    assert "unexpected in the file" in message and "shape mismatch" in message
    assert "the file holds a vov3d_l with 174 classes" in message
    assert _same(model.state_dict(), before)  # nothing was loaded
    # strict=False loads what fits, as the original loader does, and reports the rest.
    report = vov3d.load_checkpoint(model, path, strict=False)
    assert not report.ok and report.loaded > 0 and report.unexpected


@pytest.mark.parametrize("kind", ["truncated", "text", "list"])
def test_unreadable_files_name_the_file(tmp_path, kind):
    model = vov3d.create_model("vov3d_m", num_classes=3)
    path = tmp_path / f"{kind}.pyth"
    if kind == "truncated":
        full = tmp_path / "full.pyth"
        vov3d.save_checkpoint(full, model)
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        expected = "not a readable PyTorch checkpoint"
    elif kind == "text":
        path.write_text("MODEL:\n  ARCH: vov3d\n")
        expected = "not a readable PyTorch checkpoint"
    else:
        torch.save([torch.zeros(1)], path)
        expected = "expected a dict"
    with pytest.raises(CheckpointError, match=expected) as err:
        vov3d.load_checkpoint(model, path)
    assert str(path) in str(err.value)


def test_missing_file_and_non_tensor_entries(tmp_path):
    model = vov3d.create_model("vov3d_m", num_classes=3)
    with pytest.raises(FileNotFoundError, match="nope.pyth"):
        vov3d.load_checkpoint(model, tmp_path / "nope.pyth")
    torch.save({"model_state": {"head.projection.weight": [1, 2]}}, tmp_path / "odd.pyth")
    with pytest.raises(CheckpointError, match="'head.projection.weight' is a list, not a tensor"):
        vov3d.load_checkpoint(model, tmp_path / "odd.pyth")


def test_a_failed_save_leaves_the_previous_file_whole(tmp_path):
    model = vov3d.create_model("x3d_m", num_classes=5)
    path = vov3d.save_checkpoint(tmp_path / "last.pyth", model, epoch=3)
    before = path.read_bytes()
    with pytest.raises(Exception):  # a lambda cannot be pickled: torch.save fails half-way through
        vov3d.save_checkpoint(path, model, epoch=4, extra={"hook": lambda: None})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pyth"]
    assert read_checkpoint(path)["epoch"] == 3


def test_a_file_with_missing_keys_is_refused_and_loads_nothing(tmp_path):
    model = vov3d.create_model("x3d_m", num_classes=5)
    state = _random_state(model, seed=3)
    gone = ["s2.pathway0_res0.branch2.a.weight", "s5.pathway0_res1.branch2.b_bn.running_var", "head.projection.bias"]
    torch.save({"model_state": {k: v for k, v in state.items() if k not in gone}}, tmp_path / "partial.pyth")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        vov3d.load_checkpoint(model, tmp_path / "partial.pyth")
    assert "3 missing from the file" in str(err.value)
    assert all(key in str(err.value) for key in gone)
    assert _same(model.state_dict(), before)
    # strict=False loads the rest and says what is missing; the missing tensors keep their values
    report = vov3d.load_checkpoint(model, tmp_path / "partial.pyth", strict=False)
    assert not report.ok and sorted(report.missing) == sorted(gone) and report.loaded == len(state) - 3
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], before[k]) for k in gone)
    assert all(torch.equal(loaded[k], state[k]) for k in state if k not in gone)


def test_skipping_the_classifier_skips_nothing_else(tmp_path):
    k400 = vov3d.create_model("x3d_m", num_classes=400)
    state = _random_state(k400, seed=4)
    model = vov3d.create_model("x3d_m", num_classes=7)
    own = model.state_dict()
    wrong = "s3.pathway0_res0.branch2.a.weight"  # a backbone tensor of another shape
    state[wrong] = torch.zeros(own[wrong].shape[0] + 1, *own[wrong].shape[1:])
    lost = "s4.pathway0_res2.branch2.c_bn.weight"  # a backbone tensor missing from the file
    del state[lost]
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError) as err:
        vov3d.load_checkpoint(model, tmp_path / "odd.pth", skip_mismatched_classifier=True)
    message = str(err.value)
    assert f"shape mismatch {wrong}: file [" in message and f"1 missing from the file: {lost}" in message
    assert "classifier left at its initialisation: head.projection.weight, head.projection.bias" in message
    assert "shape mismatch head.projection" not in message
    report = vov3d.load_checkpoint(model, tmp_path / "odd.pth", strict=False, skip_mismatched_classifier=True)
    assert report.skipped_classifier == ["head.projection.weight", "head.projection.bias"]
    assert [k for k, _, _ in report.mismatched] == [wrong] and report.missing == [lost]


def test_a_ddp_model_is_saved_without_the_module_prefix(tmp_path):
    import torch.distributed as dist

    model = vov3d.create_model("x3d_m", num_classes=3)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        path = vov3d.save_checkpoint(tmp_path / "ddp.pyth", ddp, epoch=0)
        report = vov3d.load_checkpoint(ddp, path)  # and loads back into the wrapped model
    finally:
        dist.destroy_process_group()
    saved = read_checkpoint(path)["model_state"]
    assert list(saved) == list(model.state_dict()) and not any(k.startswith("module.") for k in saved)
    assert report.ok and report.loaded == len(saved)


def test_guess_model_names_only_an_exact_layout():
    from vov3d.checkpoint import guess_model

    state = vov3d.create_model("x3d_l", num_classes=6).state_dict()
    assert guess_model(state) == "the file holds a x3d_l with 6 classes"
    assert guess_model({k: v for k, v in state.items() if not k.startswith("head.projection")}) == ""
    assert guess_model({**state, "head.projection.weight": torch.zeros(6)}) == ""  # not a matrix
    assert guess_model({**state, "extra.weight": torch.zeros(1)}) == ""


# ---------------------------------------------------------------------------------------------
# atomic_write / atomic_output_path (vov3d/utils/atomic.py), the writer save_checkpoint uses.


def test_atomic_write_text_and_bytes(tmp_path):
    from vov3d.utils.atomic import atomic_write

    with atomic_write(tmp_path / "sub" / "a.csv", "w") as f:  # the folder is created
        f.write("vidéo 1\nb 2\n")
    assert (tmp_path / "sub" / "a.csv").read_bytes() == "vidéo 1\nb 2\n".encode("utf-8")
    with atomic_write(tmp_path / "sub" / "a.csv") as f:  # replaces
        f.write(b"\x00\x01")
    assert (tmp_path / "sub" / "a.csv").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "a.csv").stat().st_mode & 0o777 == 0o666 & ~_umask()
    with pytest.raises(ValueError, match="mode must be one of wb, w, wt, got 'a'"):
        atomic_write(tmp_path / "b", "a").__enter__()


def test_atomic_output_path_for_a_program_that_writes_by_name(tmp_path):
    import subprocess
    import sys

    from vov3d.utils.atomic import atomic_output_path

    target = tmp_path / "lib.so"
    target.write_bytes(b"old")
    with atomic_output_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".so" and target.read_bytes() == b"old"
        subprocess.run([sys.executable, "-c", f"open({str(tmp)!r}, 'wb').write(b'new')"], check=True)
    assert target.read_bytes() == b"new"
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_output_path(target):
            pass  # the program wrote nothing: the old file stays
    with pytest.raises(RuntimeError):
        with atomic_output_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the compiler failed")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["lib.so"]


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current
