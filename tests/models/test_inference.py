"""prepare_for_inference: BN folded, fast layout, outputs within 1e-4 of the plain model; fast training path;
bfloat16; the compiled-model cache."""

from __future__ import annotations

import copy
import shutil
import time

import pytest
import torch
from torch import nn

import vov3d
from tests.conftest import calibrate_batchnorms
from vov3d.models import cpu_kernels
from vov3d.models.fast_blocks import FastVideoClassifier, temporal_depthwise
from vov3d.models.inference import default_cache_dir


@pytest.mark.parametrize(
    "name,mode",
    [(name, mode) for name in vov3d.list_models() for mode in ("kernels", "fast")]
    + [("vov3d_m", "module tree"), ("x3d_m", "module tree")],
)
def test_prepared_model_matches_plain_model(name, mode):
    torch.manual_seed(0)
    model = calibrate_batchnorms(vov3d.create_model(name, num_classes=10), shape=(2, 3, 4, 64, 64))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # The default is vov3d's fused kernels; fast=True/False ask for the fast network or the module tree.
    prepared = vov3d.prepare_for_inference(model, **({} if mode == "kernels" else {"fast": mode == "fast"}))
    assert (prepared.fused is not None, prepared.fast is not None) == (mode == "kernels", mode == "fast")
    assert not any(isinstance(m, nn.BatchNorm3d) for m in prepared.modules())
    assert prepared.model.s1.pathway0_stem.conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        expected, got = model(x), prepared(x)
        exact = copy.deepcopy(model).double()(x.double())
    assert expected.abs().max() > 0.1  # the residual branches are on (calibrated BNs)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    # Folding adds no error beyond float32 rounding: as close to float64 as the plain model is.
    assert (got.double() - exact).abs().max() <= 2 * (expected.double() - exact).abs().max() + 1e-6
    # The plain model is untouched.
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # The original's one-element pathway list is accepted too.
    torch.testing.assert_close(prepared([x]), got, rtol=0, atol=0)
    if mode == "kernels" and name.startswith("vov3d"):  # a copy runs on its own weights, not the original's
        twin = copy.deepcopy(prepared)
        layer, twin_layer = prepared.fused.blocks[0].layers[0], twin.fused.blocks[0].layers[0]
        assert twin_layer._weights is None and layer._weights is not None
        del prepared, layer
        with torch.no_grad():
            assert torch.equal(twin(x), got)
        assert twin_layer._weights.wa == twin_layer.a.weight.data_ptr()


@pytest.mark.parametrize("name", ["vov3d_m", "vov3d_m_v2"])
def test_kernels_running_each_d2plus1d_layer_in_one_pass_match_plain_model(name, monkeypatch):
    from vov3d.models import fused_inference

    monkeypatch.setattr(fused_inference, "ONE_PASS_BYTES", 0)  # every layer, not only the large ones
    _assert_kernels_match_plain_model(name, (2, 3, 4, 64, 64))


@pytest.mark.parametrize("name", ["vov3d_m", "x3d_m"])
def test_kernels_match_plain_model_on_odd_sizes(name):
    # 72x90: stage inputs of odd width (36x45, 18x23; their strided shortcuts are read in place) and of
    # odd height (9x12, 5x6; copied instead); 3 frames: fewer than the stem's 5 temporal taps.
    _assert_kernels_match_plain_model(name, (1, 3, 3, 72, 90))


def _assert_kernels_match_plain_model(name: str, shape: tuple[int, ...]) -> None:
    """``name`` with calibrated BNs, prepared with the kernels, equals the plain model on a clip of ``shape``."""
    torch.manual_seed(0)
    model = calibrate_batchnorms(vov3d.create_model(name, num_classes=10), shape=(2, *shape[1:]))
    prepared = vov3d.prepare_for_inference(model, kernels=True)
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(prepared(x), model(x), rtol=0, atol=1e-4)


def test_every_batchnorm_is_folded_once():
    from vov3d.models.inference import fold_batchnorms

    model = vov3d.create_model("vov3d_m").eval()
    n_bn = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert fold_batchnorms(model) == n_bn
    assert fold_batchnorms(model) == 0


@pytest.mark.parametrize("frames", [1, 2, 3, 6])
@pytest.mark.parametrize("k", [3, 5])
def test_temporal_shift_add_equals_conv3d(frames, k):
    torch.manual_seed(0)
    conv = nn.Conv3d(8, 8, (k, 1, 1), padding=(k // 2, 0, 0), groups=8, bias=True)
    x = torch.randn(2, 8, frames, 5, 6)
    got = temporal_depthwise(x.permute(0, 2, 3, 4, 1).contiguous(), conv).permute(0, 4, 1, 2, 3)
    torch.testing.assert_close(got, conv(x), rtol=0, atol=1e-6)


def test_original_head_pool_runs_through_the_fast_path():
    torch.manual_seed(0)
    model = calibrate_batchnorms(
        vov3d.create_model("vov3d_m", num_classes=10, head_pool="original", num_frames=4, train_crop_size=64)
    )
    x = torch.randn(1, 3, 4, 96, 96)  # larger than the pool: several positions, averaged probabilities
    with torch.no_grad():
        torch.testing.assert_close(vov3d.prepare_for_inference(model)(x), model(x), rtol=0, atol=1e-5)


def _grads(model: nn.Module, x: torch.Tensor, seed: int = 1) -> list[torch.Tensor]:
    model.zero_grad()
    torch.manual_seed(seed)  # the same dropout mask for both
    model(x).logsumexp(dim=1).sum().backward()
    return [p.grad.double().clone() for p in model.parameters()]


@pytest.mark.parametrize("kernels", [False, True], ids=["torch_ops", "train_kernels"])
@pytest.mark.parametrize("name", ["vov3d_m", "x3d_m"])
def test_fast_training_path_gradients_and_statistics_equal_the_plain_model(name, kernels):
    torch.manual_seed(0)
    model = calibrate_batchnorms(vov3d.create_model(name, num_classes=10)).train()
    x = torch.randn(2, 3, 4, 48, 48)
    plain, fast_src = copy.deepcopy(model), copy.deepcopy(model)
    lib = cpu_kernels.load_kernels(default_cache_dir()) if kernels else None
    fast = FastVideoClassifier(fast_src, kernels=lib).train()
    g_plain, g_fast = _grads(plain, x), _grads(fast, x)
    g_exact = _grads(copy.deepcopy(model).double(), x.double())
    if kernels:
        # Rounded otherwise than the plain model, the kernels put one of the ~10^5 ReLU inputs here (3e-6
        # from zero) on the other side of the kink than float64 does: that element's gradient is switched
        # off or on, and the error spreads to the gradients below it (up to 0.8% of a parameter's
        # gradient norm). Each kernel's exactness is tested alone (test_train_kernels.py); here, the
        # wiring: every parameter gets its gradient, and all of them together are within 1e-3.
        def flat(grads: list[torch.Tensor]) -> torch.Tensor:
            return torch.cat([g.flatten() for g in grads])

        assert (flat(g_fast) - flat(g_exact)).norm() <= 1e-3 * flat(g_exact).norm()
        for (pname, _), gf, ge in zip(model.named_parameters(), g_fast, g_exact):
            assert (gf - ge).norm() <= 0.02 * ge.norm() + 1e-9, pname
    else:
        for (pname, _), gp, gf, ge in zip(model.named_parameters(), g_plain, g_fast, g_exact):
            # Each gradient is as close to float64 as the plain float32 model's is (float32 rounding only).
            scale = ge.abs().max() + 1e-12
            assert (gf - ge).abs().max() <= 4 * (gp - ge).abs().max() + 1e-5 * scale, pname
    # BN running statistics are updated the same way.
    for (key, a), b in zip(plain.state_dict().items(), fast_src.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=key)
        else:
            assert torch.equal(a, b), key


@pytest.mark.parametrize("name", ["vov3d_m", "x3d_m"])
def test_bfloat16_prepared_model_is_close_to_float32(name):
    torch.manual_seed(0)
    model = calibrate_batchnorms(vov3d.create_model(name, num_classes=10))
    x = torch.randn(4, 3, 4, 64, 64)
    with torch.no_grad():
        expected = model(x)
    scale = expected.abs().max()
    # The fast network in bfloat16: weights and activations rounded.
    fast = vov3d.prepare_for_inference(model, dtype=torch.bfloat16, kernels=False)
    assert fast.fast.model.head.projection.weight.dtype == torch.bfloat16 and fast.fused is None
    got = fast(x)
    assert got.dtype == torch.float32
    assert (got - expected).abs().max() <= 0.05 * scale
    # The default where the CPU has AVX512_BF16: the fused kernels with bfloat16 products only, closer.
    lib = cpu_kernels.load_kernels(default_cache_dir())
    if not cpu_kernels.has_bf16(lib):
        pytest.skip("this CPU has no AVX512_BF16: bfloat16 runs the fast network")
    fused = vov3d.prepare_for_inference(model, dtype=torch.bfloat16)
    assert fused.fused is not None and fused.fused.dtype == torch.bfloat16 and fused.dtype == torch.bfloat16
    if name == "vov3d_m":  # the depthwise output, which only the next product reads (after SE's scaling), as bfloat16
        layers = [layer for block in fused.fused.blocks for layer in block.layers]
        stored = {(layer.se is None, layer.depthwise["dw_dtype"]) for layer in layers}
        assert stored == {(True, torch.bfloat16), (False, torch.bfloat16)}
    # VoV3D stores its activations between the kernels as bfloat16 too; X3D (oneDNN's depthwise conv) float32.
    act = torch.bfloat16 if name == "vov3d_m" else torch.float32
    assert fused.fused.act == act and fused.fused.stem.out_dtype == act
    if name == "vov3d_m":
        assert {(layer.in_dtype, layer.out_dtype) for layer in layers} == {(act, act)}
        assert {block.act for block in fused.fused.blocks} == {act}
    got_fused = fused(x)
    float32 = vov3d.prepare_for_inference(model)(x)
    assert got_fused.dtype == torch.float32
    assert 1e-5 * scale < (got_fused - float32).abs().max() <= 0.03 * scale  # rounded, and not far
    assert (got_fused - expected).abs().max() < (got - expected).abs().max()


def test_bfloat16_kernels_are_not_chosen_without_avx512_bf16(monkeypatch):
    from vov3d.models import inference

    monkeypatch.setattr(inference, "has_bf16", lambda lib: False)  # as on a CPU without AVX512_BF16
    model = calibrate_batchnorms(vov3d.create_model("vov3d_m", num_classes=10))
    prepared = vov3d.prepare_for_inference(model, dtype=torch.bfloat16)
    assert prepared.fused is None and prepared.fast is not None
    with pytest.raises(RuntimeError, match="no AVX512_BF16"):
        vov3d.prepare_for_inference(model, dtype=torch.bfloat16, kernels=True)


def _tiny_vov3d() -> nn.Module:
    from vov3d.models.vov3d import build_vov3d

    torch.manual_seed(0)
    model = build_vov3d(num_classes=5, inner_channels=8, blocks=(1, 1, 1, 1), layers_per_block=2, head_dim=32)
    return calibrate_batchnorms(model, shape=(1, 3, 2, 32, 32))


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="needs a C++ compiler")
def test_compiled_model_matches_and_is_cached_on_disk(tmp_path):
    # Worth its cost (tens of seconds: one AOTInductor compilation of a tiny VoV3D): it is the only
    # test that the compiled path computes the same function and that a second process-like
    # preparation loads the package instead of compiling again.
    model = _tiny_vov3d()
    x = torch.randn(1, 3, 2, 32, 32)
    prepared = vov3d.prepare_for_inference(model, compile=True, cache_dir=tmp_path)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(prepared(x), expected, rtol=0, atol=1e-4)
    assert prepared.compiled.compiled_shapes == [(1, 2, 32, 32, 3)]
    assert len(list((tmp_path / "aoti").glob("*.pt2"))) == 1

    again = vov3d.prepare_for_inference(model, compile=True, cache_dir=tmp_path)
    t0 = time.perf_counter()
    torch.testing.assert_close(again(x), expected, rtol=0, atol=1e-4)
    assert time.perf_counter() - t0 < 10  # loaded, not compiled
    assert again.compiled.compiled_shapes == []

    # Other weights: another package (the weights are compiled in as constants).
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.head.projection.bias.add_(1.0)
    assert again.compiled.package_path(x) != vov3d.prepare_for_inference(
        changed, compile=True, cache_dir=tmp_path
    ).compiled.package_path(x)


def test_prepare_keeps_freed_memory_with_glibc():
    import platform

    from vov3d import allocator

    vov3d.prepare_for_inference(vov3d.create_model("vov3d_m", num_classes=5))
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and allocator.preloaded_allocator() is None:
        assert allocator.keep_freed_memory()
        assert "kept" in allocator.describe_allocator()
