"""prepare_for_training: the channels-last network with or without the training kernels, or the model itself;
gradients and statistics equal the plain model's; the prepared model's state dict is the pure model's."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import vov3d
from tests.conftest import calibrate_batchnorms
from vov3d.accel import prepare
from vov3d.accel.channels_last import ChannelsLastNetwork
from vov3d.accel.prepare import BackendUnavailable
from vov3d.checkpoint import load_checkpoint, save_checkpoint
from vov3d.models import D2Plus1D, X3DBottleneck


def _grads(model: nn.Module, x: torch.Tensor, seed: int = 1) -> list[torch.Tensor]:
    model.zero_grad()
    torch.manual_seed(seed)  # the same dropout mask for both
    model(x).logsumexp(dim=1).sum().backward()
    return [p.grad.double().clone() for p in model.parameters()]


@pytest.mark.parametrize("kernels", [False, True], ids=["torch_ops", "training_kernels"])
@pytest.mark.parametrize("name", ["vov3d_m", "x3d_m"])
def test_channels_last_network_gradients_and_statistics_equal_the_plain_model(name, kernels):
    torch.manual_seed(0)
    model = calibrate_batchnorms(vov3d.create_model(name, num_classes=10)).train()
    x = torch.randn(2, 3, 4, 48, 48)
    plain, fast_src = copy.deepcopy(model), copy.deepcopy(model)
    fast = vov3d.prepare_for_training(fast_src, backend="kernels" if kernels else "channels_last").train()
    assert isinstance(fast, ChannelsLastNetwork) and (fast.lib is not None) == kernels
    g_fast = _grads(fast, x)
    _grads(plain, x)  # updates its BN statistics, compared below
    g_exact = _grads(copy.deepcopy(model).double(), x.double())
    if not kernels:
        # The wiring, exactly: in float64 the channels-last network's gradients are the plain model's.
        wide = vov3d.prepare_for_training(copy.deepcopy(model).double(), backend="channels_last").train()
        for (pname, _), gw, ge in zip(model.named_parameters(), _grads(wide, x.double()), g_exact):
            torch.testing.assert_close(gw, ge, rtol=1e-9, atol=1e-12 * ge.abs().max(), msg=pname)
    # In float32, rounded otherwise than the plain model (other kernels, or the same ones on another
    # number of threads), a few of the ~10^5 ReLU inputs within ~1e-6 of zero land on the other side of
    # the kink than in float64: that element's gradient is switched off or on, and the error spreads to
    # the gradients below it (measured with one thread: 0.5% of one parameter's gradient norm, 0.03%
    # overall; with the kernels up to 0.8%). So: together within 1e-3, each within 2%.
    def flat(grads: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([g.flatten() for g in grads])

    assert (flat(g_fast) - flat(g_exact)).norm() <= 1e-3 * flat(g_exact).norm()
    for (pname, _), gf, ge in zip(model.named_parameters(), g_fast, g_exact):
        assert (gf - ge).norm() <= 0.02 * ge.norm() + 1e-9, pname
    # BN running statistics are updated the same way.
    for (key, a), b in zip(plain.state_dict().items(), fast_src.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=key)
        else:
            assert torch.equal(a, b), key


def graph_nodes(output: torch.Tensor) -> list[str]:
    """The names of the autograd nodes ``output`` depends on."""
    seen, todo, names = set(), [output.grad_fn], []
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        todo.extend(next_fn for next_fn, _ in node.next_functions)
    return names


@pytest.mark.parametrize("name", ["vov3d_m", "x3d_m"])
def test_prepare_for_training_runs_the_kernels_on_the_model(name):
    model = vov3d.create_model(name, num_classes=10, dropout=0.0)
    fast = vov3d.prepare_for_training(model, backend="kernels")
    assert fast.model is model and fast.training and fast.lib is not None
    names = graph_nodes(fast(torch.randn(2, 3, 4, 32, 32)).sum())
    bns = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    temporal = sum(isinstance(m, nn.Conv3d) and m.kernel_size[1:] == (1, 1) and m.kernel_size[0] > 1 for m in model.modules())
    # Every batch norm runs through the kernels: after a temporal conv (VoV3D's D(2+1)D and the stem) as
    # bn_se_act, D(2+1)D's first with its depthwise 1x3x3 conv (bn_relu_depthwise), the others as
    # batch_norm_act; but X3D's after its 3x3x3 depthwise conv (torch ops). No concatenation is written
    # (T-OSA's aggregation reads the layer outputs in place).
    x3d_middle = sum(isinstance(m, X3DBottleneck) for m in model.modules())
    d2plus1d = sum(isinstance(m, D2Plus1D) for m in model.modules())
    assert names.count("_TemporalConvSumsBackward") == names.count("_AffineActBackward") == temporal
    assert names.count("_BatchNormReluDepthwiseBackward") == d2plus1d
    assert names.count("_BatchNormActBackward") == bns - temporal - d2plus1d - x3d_middle
    assert names.count("NativeBatchNormBackward0") == x3d_middle and "CatBackward0" not in names
    # Without the kernels, the same wrapper runs torch ops.
    plain_names = graph_nodes(vov3d.prepare_for_training(model, backend="channels_last")(torch.randn(1, 3, 2, 32, 32)).sum())
    assert "_BatchNormActBackward" not in plain_names and "NativeBatchNormBackward0" in plain_names


def test_prepared_model_deep_copies_sharing_the_library():
    model = vov3d.create_model("vov3d_m", num_classes=10, dropout=0.0)
    fast = vov3d.prepare_for_training(model, backend="kernels")
    twin = copy.deepcopy(fast)  # e.g. an EMA copy: new parameters, the same kernel library
    assert twin.lib is fast.lib and twin.model is not model
    assert twin.runners[0].src is twin.model.s1.pathway0_stem  # the copy's runners read the copy's modules
    x = torch.randn(2, 3, 2, 32, 32)
    torch.testing.assert_close(twin(x), fast(x), rtol=0, atol=0)


def test_prepare_for_training_refuses_kernels_for_other_dtypes():
    model = vov3d.create_model("vov3d_m", num_classes=10).double()
    with pytest.raises(BackendUnavailable, match="float32 models on the CPU, not float64 on cpu"):
        vov3d.prepare_for_training(model, backend="kernels")
    fallback = vov3d.prepare_for_training(model)  # the default falls back to torch ops
    assert isinstance(fallback, ChannelsLastNetwork) and fallback.lib is None


def test_prepare_for_training_without_a_compiler_says_why_once(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "has_avx512", lambda: True)  # where "auto" would run the kernels
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang to be found
    monkeypatch.setattr(prepare, "_warned", set())
    model = vov3d.create_model("vov3d_m", num_classes=10)
    with pytest.warns(UserWarning, match=r"training kernels cannot run here \(no C compiler found"):
        fallback = vov3d.prepare_for_training(model, cache_dir=tmp_path / "cache")
    assert isinstance(fallback, ChannelsLastNetwork) and fallback.lib is None  # torch ops
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: not again
        vov3d.prepare_for_training(model, cache_dir=tmp_path / "cache")
    with pytest.raises(BackendUnavailable, match="backend='kernels' cannot run here: no C compiler found"):
        vov3d.prepare_for_training(model, backend="kernels", cache_dir=tmp_path / "cache")


def test_eager_training_backend_is_the_model_itself_and_unknown_backends_are_named():
    model = vov3d.create_model("x3d_m", num_classes=10)
    assert vov3d.prepare_for_training(model, backend="eager") is model
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'kernels', 'channels_last', 'eager', got 'fast'"):
        vov3d.prepare_for_training(model, backend="fast")
    with pytest.raises(ValueError, match="'compiled'.*got 'compile'"):
        vov3d.prepare_for_inference(model, backend="compile")


@pytest.mark.parametrize("backend", ["kernels", "channels_last"])
def test_training_prepared_state_dict_is_the_pure_models(backend):
    model = vov3d.create_model("vov3d_m", num_classes=10)
    prepared = vov3d.prepare_for_training(model, backend=backend)
    pure = model.state_dict()
    state = prepared.state_dict()
    assert list(state) == list(pure)  # the same keys, in the same order, each once
    assert all(state[k].data_ptr() == v.data_ptr() for k, v in pure.items())  # the model's own tensors
    assert [id(p) for p in prepared.parameters()] == [id(p) for p in model.parameters()]
    prepared.eval()
    assert not model.training and not any(m.training for m in model.modules())
    prepared.train()
    assert model.training and all(m.training for m in model.modules())


def test_checkpoint_round_trip_from_a_training_prepared_model(tmp_path):
    torch.manual_seed(0)
    model = vov3d.create_model("x3d_m", num_classes=7)
    prepared = vov3d.prepare_for_training(model)
    prepared(torch.randn(2, 3, 2, 32, 32)).sum().backward()  # a step changes the BN statistics
    path = tmp_path / "checkpoint.pyth"
    save_checkpoint(path, prepared, epoch=3)
    fresh = vov3d.create_model("x3d_m", num_classes=7)
    report = load_checkpoint(fresh, path, strict=True)
    assert report.ok and report.epoch == 3 and report.loaded == len(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    # And back into a training-prepared model, strictly.
    again = vov3d.prepare_for_training(vov3d.create_model("x3d_m", num_classes=7))
    assert load_checkpoint(again, path, strict=True).ok
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())
