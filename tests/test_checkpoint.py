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
        expected = "not a readable PyTorch checkpoint (truncated, corrupt or another format)"
    elif kind == "text":
        path.write_text("MODEL:\n  ARCH: vov3d\n")
        expected = "not a readable PyTorch checkpoint (truncated, corrupt or another format)"
    else:
        torch.save([torch.zeros(1)], path)
        expected = "expected a dict (a state dict or {'model_state': ...}), got list"
    with pytest.raises(CheckpointError) as err:
        vov3d.load_checkpoint(model, path)
    message = str(err.value)
    assert message.startswith(f"{path}: {expected}") and "\n" not in message
    if kind != "list":  # then the first line of torch's own reason, not just an exception type
        reason = message.split(f"{expected}: ", 1)[1]
        assert len(reason) > 30 and " " in reason


def test_a_file_that_would_run_code_when_unpickled_is_refused_unrun(tmp_path):
    # torch.load(weights_only=True) unpickles tensors and plain containers only.
    marker = tmp_path / "ran"

    class Gadget:
        def __reduce__(self):
            return open, (str(marker), "w")

    model = _Tiny()
    path = tmp_path / "gadget.pyth"
    torch.save({"model_state": model.state_dict(), "note": Gadget()}, path)
    with pytest.raises(CheckpointError, match=r"gadget\.pyth: not a readable PyTorch checkpoint .*[Ww]eights.only"):
        vov3d.load_checkpoint(model, path)
    assert not marker.exists()


def test_read_checkpoint_maps_the_tensors_where_asked(tmp_path):
    torch.save({"model_state": _Tiny().state_dict()}, tmp_path / "f.pyth")
    state = read_checkpoint(tmp_path / "f.pyth", map_location="meta")["model_state"]
    assert {t.device.type for t in state.values()} == {"meta"}


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


def test_a_load_report_names_five_keys_of_each_kind_and_counts_the_rest():
    from vov3d.checkpoint import LoadReport

    keys = [f"k{i}" for i in range(7)]
    report = LoadReport(
        "f.pyth", loaded=3, missing=keys[:6], unexpected=keys[:5],
        mismatched=[(k, (2, i), (3,)) for i, k in enumerate(keys)], skipped_classifier=["head.w"],
    )
    assert str(report).splitlines() == [
        "f.pyth: 3 tensors fit the model",
        "  classifier left at its initialisation: head.w",
        "  6 missing from the file: k0, k1, k2, k3, k4 (and 1 more)",
        "  5 unexpected in the file: k0, k1, k2, k3, k4",
        "  shape mismatch k0: file [2, 0], model [3]",
        "  shape mismatch k1: file [2, 1], model [3]",
        "  shape mismatch k2: file [2, 2], model [3]",
        "  shape mismatch k3: file [2, 3], model [3]",
        "  shape mismatch k4: file [2, 4], model [3]",
        "  ... and 2 more shape mismatches",
    ]
    report.mismatched = report.mismatched[:5]
    assert str(report).splitlines()[-1] == "  shape mismatch k4: file [2, 4], model [3]"
    assert LoadReport("g.pt", loaded=9).ok and str(LoadReport("g.pt", loaded=9)) == "g.pt: 9 tensors fit the model"


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


class _Tiny(torch.nn.Module):
    """A backbone tensor and a classifier under the original's name (head.projection)."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.body = torch.nn.Linear(4, 4)
        self.head = torch.nn.Module()
        self.head.projection = torch.nn.Linear(4, classes)


def test_weights_are_found_under_model_state_state_dict_or_at_the_top(tmp_path):
    source = _Tiny()
    for name, obj in [("slowfast", {"model_state": source.state_dict(), "epoch": 4}),
                      ("lightning", {"state_dict": source.state_dict(), "epoch": 9}),
                      ("bare", source.state_dict())]:
        torch.save(obj, tmp_path / f"{name}.pt")
        model = _Tiny()
        report = vov3d.load_checkpoint(model, tmp_path / f"{name}.pt")
        assert report.ok and report.loaded == 4 and report.source == str(tmp_path / f"{name}.pt")
        assert _same(model.state_dict(), source.state_dict())
        # the epoch is the original format's only: another program's epoch means something else
        assert report.epoch == (4 if name == "slowfast" else None)
    report = vov3d.load_checkpoint(_Tiny(), source.state_dict())
    assert report.source == "state dict" and str(report) == "state dict: 4 tensors fit the model"


def test_files_without_weights_are_refused_naming_the_file_and_their_keys(tmp_path):
    for name, obj in [("empty", {}), ("empty_model_state", {"model_state": {}}), ("listed", {"state_dict": [1]})]:
        torch.save(obj, tmp_path / f"{name}.pt")
        with pytest.raises(CheckpointError) as err:
            vov3d.load_checkpoint(_Tiny(), tmp_path / f"{name}.pt")
        assert str(err.value) == (f"{tmp_path / name}.pt: no model weights found "
                                  "(expected a 'model_state' dict or a state dict)")
    nine = {f"k{i}": torch.zeros(1) for i in range(8)} | {"note": "hello"}
    torch.save(nine, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError) as err:
        vov3d.load_checkpoint(_Tiny(), tmp_path / "odd.pt")
    assert str(err.value) == (f"{tmp_path / 'odd.pt'}: not a state dict: entry 'note' is a str, not a tensor "
                              "(top-level keys: k0, k1, k2, k3, k4, k5, k6, k7)")
    with pytest.raises(CheckpointError, match="^state dict: no model weights found"):
        vov3d.load_checkpoint(_Tiny(), {})


def test_a_classifier_missing_from_the_file_is_skipped_for_fine_tuning_and_hinted_otherwise(tmp_path, caplog):
    source = _Tiny(classes=5)
    headless = {k: v for k, v in source.state_dict().items() if not k.startswith("head.")}
    model = _Tiny()
    with caplog.at_level("WARNING", logger="vov3d.checkpoint"):
        report = vov3d.load_checkpoint(model, headless, skip_mismatched_classifier=True)
    assert report.ok and report.missing == [] and report.loaded == 2
    assert report.skipped_classifier == ["head.projection.weight", "head.projection.bias"]
    assert caplog.text == ""  # nothing went wrong: nothing to warn about
    # strict, only the classifier differs: the message says how to fine-tune
    with pytest.raises(CheckpointError) as err:
        vov3d.load_checkpoint(_Tiny(), source.state_dict())
    assert str(err.value).endswith(
        "\n  (only the classifier differs: pass skip_mismatched_classifier=True to fine-tune)")
    # strict, the backbone differs and no registered model has this layout: no hint at all
    with pytest.raises(CheckpointError) as err:
        vov3d.load_checkpoint(_Tiny(), headless | {"body.weight": torch.zeros(2, 2)})
    assert str(err.value).endswith("model [4, 4]") and "(" not in str(err.value).splitlines()[-1]
    # not strict: what fits is loaded and the rest is logged as a warning with the report
    with caplog.at_level("WARNING", logger="vov3d.checkpoint"):
        report = vov3d.load_checkpoint(model, headless, strict=False)
    assert not report.ok and report.missing == ["head.projection.weight", "head.projection.bias"]
    assert "loaded a checkpoint partially:\nstate dict: 2 tensors fit the model\n  2 missing from the file" in caplog.text
