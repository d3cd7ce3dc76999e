"""prepare_for_inference: BN folded, every backend's outputs within 1e-4 of the plain model; bfloat16; the
compiled-model cache; a backend that cannot run says why."""

from __future__ import annotations

import copy
import shutil
import time
import warnings

import pytest
import torch
from torch import nn

import vov3d
from tests.conftest import calibrate_batchnorms
from vov3d.accel import kernel_network, prepare
from vov3d.accel.channels_last import ChannelsLastNetwork, temporal_depthwise
from vov3d.accel.prepare import BackendUnavailable, InferenceModel
from vov3d.ops.library import default_cache_dir, has_bf16, library_unavailable, load_library


@pytest.mark.parametrize(
    "name,mode",
    [(name, mode) for name in vov3d.list_models() for mode in ("kernels", "channels_last")]
    + [("vov3d_m", "eager"), ("x3d_m", "eager")],
)
def test_prepared_model_matches_plain_model(name, mode):
    torch.manual_seed(0)
    model = calibrate_batchnorms(vov3d.create_model(name, num_classes=10), shape=(2, 3, 4, 64, 64))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepared = vov3d.prepare_for_inference(model, backend=mode)
    assert prepared.backend == mode
    assert not any(isinstance(m, nn.BatchNorm3d) for m in prepared.modules())
    # The state dict is the folded model's, each tensor once, under the model's names.
    assert list(prepared.state_dict()) == list(prepared.model.state_dict())
    pure_keys = set(model.state_dict())
    assert {k for k in prepared.state_dict() if not k.endswith(".bias")} <= pure_keys
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
        layer, twin_layer = prepared.runner.blocks[0].layers[0], twin.runner.blocks[0].layers[0]
        assert twin_layer._weights is None and layer._weights is not None
        del prepared, layer
        with torch.no_grad():
            assert torch.equal(twin(x), got)
        assert twin_layer._weights.wa == twin_layer.a.weight.data_ptr()


@pytest.mark.parametrize("name", ["vov3d_m", "vov3d_m_v2"])
def test_kernels_running_each_d2plus1d_layer_in_one_pass_match_plain_model(name, monkeypatch):
    monkeypatch.setattr(kernel_network, "ONE_PASS_BYTES", 0)  # every layer, not only the large ones
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
    prepared = vov3d.prepare_for_inference(model, backend="kernels")
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(prepared(x), model(x), rtol=0, atol=1e-4)


def test_every_batchnorm_is_folded_once():
    from vov3d.accel.bn_folding import fold_batchnorms

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


def test_original_head_pool_runs_through_the_channels_last_network():
    torch.manual_seed(0)
    model = calibrate_batchnorms(
        vov3d.create_model("vov3d_m", num_classes=10, head_pool="original", num_frames=4, train_crop_size=64)
    )
    x = torch.randn(1, 3, 4, 96, 96)  # larger than the pool: several positions, averaged probabilities
    with torch.no_grad():
        prepared = vov3d.prepare_for_inference(model)  # the kernels do not run this head: "auto" picks "eager"
        assert prepared.backend == "eager"
        torch.testing.assert_close(prepared(x), model(x), rtol=0, atol=1e-5)
        prepared = vov3d.prepare_for_inference(model, backend="channels_last")
        torch.testing.assert_close(prepared(x), model(x), rtol=0, atol=1e-5)
        with pytest.raises(BackendUnavailable, match="global-pool head, not the 'original' one"):
            vov3d.prepare_for_inference(model, backend="kernels")


@pytest.mark.parametrize("name", ["vov3d_m", "x3d_m"])
def test_bfloat16_prepared_model_is_close_to_float32(name):
    torch.manual_seed(0)
    model = calibrate_batchnorms(vov3d.create_model(name, num_classes=10))
    x = torch.randn(4, 3, 4, 64, 64)
    with torch.no_grad():
        expected = model(x)
    scale = expected.abs().max()
    # The channels-last network in bfloat16: weights and activations rounded.
    fast = vov3d.prepare_for_inference(model, dtype=torch.bfloat16, backend="channels_last")
    assert fast.model.head.projection.weight.dtype == torch.bfloat16 and fast.backend == "channels_last"
    got = fast(x)
    assert got.dtype == torch.float32
    assert (got - expected).abs().max() <= 0.05 * scale
    # The default where the CPU has AVX512_BF16: the kernels with bfloat16 products only, closer.
    lib = load_library(default_cache_dir())
    if not has_bf16(lib):
        pytest.skip("this CPU has no AVX512_BF16: bfloat16 runs the channels-last network")
    with_kernels = vov3d.prepare_for_inference(model, dtype=torch.bfloat16)
    assert with_kernels.backend == "kernels" and with_kernels.runner.dtype == with_kernels.dtype == torch.bfloat16
    if name == "vov3d_m":  # the depthwise output, which only the next product reads (after SE's scaling), as bfloat16
        layers = [layer for block in with_kernels.runner.blocks for layer in block.layers]
        stored = {(layer.se is None, layer.depthwise["dw_dtype"]) for layer in layers}
        assert stored == {(True, torch.bfloat16), (False, torch.bfloat16)}
    # VoV3D stores its activations between the kernels as bfloat16 too; X3D (oneDNN's depthwise conv) float32.
    storage = torch.bfloat16 if name == "vov3d_m" else torch.float32
    assert with_kernels.runner.storage_dtype == storage and with_kernels.runner.stem.out_dtype == storage
    if name == "vov3d_m":
        assert {(layer.in_dtype, layer.out_dtype) for layer in layers} == {(storage, storage)}
        assert {block.storage_dtype for block in with_kernels.runner.blocks} == {storage}
    got_kernels = with_kernels(x)
    float32 = vov3d.prepare_for_inference(model)(x)
    assert got_kernels.dtype == torch.float32
    assert 1e-5 * scale < (got_kernels - float32).abs().max() <= 0.03 * scale  # rounded, and not far
    assert (got_kernels - expected).abs().max() < (got - expected).abs().max()


def test_bfloat16_kernels_are_not_chosen_without_avx512_bf16(monkeypatch):
    monkeypatch.setattr(prepare, "has_avx512", lambda: True)  # as on a CPU with AVX-512 but not AVX512_BF16
    monkeypatch.setattr(prepare, "has_bf16", lambda lib: False)
    monkeypatch.setattr(prepare, "_warned", set())
    model = calibrate_batchnorms(vov3d.create_model("vov3d_m", num_classes=10))
    with pytest.warns(UserWarning, match="kernels cannot run here .bfloat16 needs a CPU with AVX512_BF16"):
        prepared = vov3d.prepare_for_inference(model, dtype=torch.bfloat16)
    assert prepared.backend == "channels_last"
    with pytest.raises(BackendUnavailable, match="backend='kernels' cannot run here: bfloat16 needs a CPU with AVX512_BF16"):
        vov3d.prepare_for_inference(model, dtype=torch.bfloat16, backend="kernels")
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.bfloat16, got torch.float16"):
        vov3d.prepare_for_inference(model, dtype=torch.float16)


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
    prepared = vov3d.prepare_for_inference(model, backend="compiled", cache_dir=tmp_path)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(prepared(x), expected, rtol=0, atol=1e-4)
    assert prepared.runner.compiled_shapes == [(1, 2, 32, 32, 3)]
    assert len(list((tmp_path / "aoti").glob("*.pt2"))) == 1

    again = vov3d.prepare_for_inference(model, backend="compiled", cache_dir=tmp_path)
    t0 = time.perf_counter()
    torch.testing.assert_close(again(x), expected, rtol=0, atol=1e-4)
    assert time.perf_counter() - t0 < 10  # loaded, not compiled
    assert again.runner.compiled_shapes == []

    # Other weights: another package (the weights are compiled in as constants).
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.head.projection.bias.add_(1.0)
    assert again.runner.package_path(x) != vov3d.prepare_for_inference(
        changed, backend="compiled", cache_dir=tmp_path
    ).runner.package_path(x)


def test_prepare_keeps_freed_memory_with_glibc():
    import platform

    from vov3d.accel import allocator

    vov3d.prepare_for_inference(vov3d.create_model("vov3d_m", num_classes=5))
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and allocator.preloaded_allocator() is None:
        assert allocator.keep_freed_memory()
        assert "kept" in allocator.describe_allocator()


def test_without_a_compiler_prepare_falls_back_to_torch_ops_and_says_why_once(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "has_avx512", lambda: True)  # where "auto" would run the kernels
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang to be found
    monkeypatch.setattr(prepare, "_warned", set())
    model = calibrate_batchnorms(vov3d.create_model("vov3d_m", num_classes=5))
    with pytest.warns(UserWarning, match=r"kernels cannot run here \(no C compiler found"):
        prepared = vov3d.prepare_for_inference(model, cache_dir=tmp_path / "cache", keep_memory=False)
    assert prepared.backend == "eager" and prepared.runner is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        vov3d.prepare_for_inference(model, cache_dir=tmp_path / "cache", keep_memory=False)
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(prepared(x), model(x), rtol=0, atol=1e-4)
    with pytest.raises(BackendUnavailable, match="backend='kernels' cannot run here: no C compiler found"):
        vov3d.prepare_for_inference(model, cache_dir=tmp_path / "cache", backend="kernels", keep_memory=False)


def test_kernels_are_chosen_only_for_a_model_on_the_cpu():
    with torch.device("meta"):  # stands for a GPU here: any device but the CPU
        model = vov3d.create_model("x3d_m", num_classes=5).eval()
    prepared = vov3d.prepare_for_inference(model, keep_memory=False)
    assert isinstance(prepared, InferenceModel) and prepared.backend == "eager"  # the folded module tree
    assert prepared(torch.empty(1, 3, 4, 32, 32, device="meta")).shape == (1, 5)
    with pytest.raises(BackendUnavailable, match="float32 models on the CPU, not float32 on meta"):
        vov3d.prepare_for_inference(model, backend="kernels", keep_memory=False)


def test_an_inference_model_refuses_training_mode():
    prepared = vov3d.prepare_for_inference(vov3d.create_model("x3d_m", num_classes=5), keep_memory=False)
    with pytest.raises(RuntimeError, match="eval mode only"):
        prepared.train()


@pytest.mark.parametrize("avx512", [True, False], ids=["avx512", "avx2"])
def test_auto_runs_the_kernels_only_on_a_cpu_with_avx512(avx512, monkeypatch):
    """On an AVX2-only CPU the kernels measured 11-15x slower than "eager" (inference) and 3x slower than
    "channels_last" (training): "auto" passes over them there, without a warning (a choice, not a failure)."""
    if library_unavailable() is not None:
        pytest.skip(f"no kernel library here: {library_unavailable()}")
    monkeypatch.setattr(prepare, "has_avx512", lambda: avx512)
    monkeypatch.setattr(prepare, "_warned", set())
    model = vov3d.create_model("vov3d_m", num_classes=5, dropout=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inference = vov3d.prepare_for_inference(model, keep_memory=False)
        training = vov3d.prepare_for_training(copy.deepcopy(model), keep_memory=False)
        explicit = vov3d.prepare_for_inference(model, backend="kernels", keep_memory=False)
    assert inference.backend == ("kernels" if avx512 else "eager")
    assert isinstance(training, ChannelsLastNetwork) and (training.lib is not None) == avx512
    assert explicit.backend == "kernels"  # asked for by name, the kernels run on any CPU
