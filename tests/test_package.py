"""Package-level behaviour: light imports, the public names, the `vov3d` command."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import vov3d
from vov3d.cli import main
from vov3d.ops.library import default_cache_dir, find_compiler, library_path, load_library


def test_import_does_not_load_torch():
    code = "import sys, vov3d, vov3d.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_public_names_resolve_and_unknown_ones_fail():
    for name in vov3d.__all__:
        assert getattr(vov3d, name) is not None
    accel = importlib.import_module("vov3d.accel")
    for name in accel.__all__:
        assert getattr(accel, name) is not None
    assert vov3d.prepare_for_inference is accel.prepare_for_inference
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        vov3d.nope  # noqa: B018


def test_models_command_lists_the_registry(capsys):
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split() == vov3d.list_models()


REPO = Path(__file__).resolve().parents[1]

INSTALLED_CHECK = """
import sys, warnings
warnings.simplefilter("error")  # a kernel library that cannot be built warns: make that a failure
import torch
import vov3d
from vov3d.ops import library
assert vov3d.__file__.startswith(sys.argv[1]), f"imported {vov3d.__file__}, not the installed copy"
assert library.library_unavailable() is None, library.library_unavailable()
print("library", library.library_path(library.default_cache_dir(), library.find_compiler()))
torch.manual_seed(0)
model = vov3d.create_model("vov3d_m", num_classes=5).eval()
prepared = vov3d.prepare_for_inference(model, backend="kernels")
x = torch.randn(1, 3, 2, 32, 32)
with torch.no_grad():
    torch.testing.assert_close(prepared(x), model(x), rtol=0, atol=1e-4)
print("kernels built from", library.CSRC)
"""


def test_installed_wheel_builds_the_kernels_from_its_own_sources(tmp_path):
    # Issue 15: a wheel that shipped the .c files but not vector.h ran torch ops after one warning. Build a
    # wheel from a copy of the sources (not this tree: no build/ or egg-info left here), install it outside
    # the source tree (not editable), and run the kernels from the installed copy in a fresh process: its
    # library_unavailable() finds every source and header it needs, and its outputs match the torch path.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("vov3d-*.whl")
    csrc = REPO / "src" / "vov3d" / "ops" / "csrc"
    with zipfile.ZipFile(wheel) as archive:
        shipped = {Path(n).name for n in archive.namelist() if n.startswith("vov3d/ops/csrc/")}
        labels = {Path(n).name for n in archive.namelist() if n.startswith("vov3d/labels/")}
    assert shipped == {f.name for f in csrc.iterdir() if f.is_file()}  # every source and header the build reads
    assert {"kinetics400.txt", "something-something-v2.txt"} <= labels  # vov3d predict --labels kinetics400|ssv2

    # The installed copy's library is keyed by the bytes of the sources it ships: with this process's cache
    # (built here if not yet), the same key proves they are this tree's sources, and spares a second build.
    assert load_library() is not None
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", INSTALLED_CHECK, str(site)], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"kernels built from {site}" in run.stdout
    assert f"library {library_path(default_cache_dir(), find_compiler())}\n" in run.stdout


def test_top_level_create_model_is_the_pretrained_aware_one():
    """``vov3d.create_model`` takes ``pretrained=`` (timm-style); without it, a fresh model as the registry builds."""
    from vov3d.pretrained import create_model

    assert vov3d.create_model is create_model
    model = vov3d.create_model("x3d_m", num_classes=7)
    assert model.head.projection.out_features == 7
    with pytest.raises(ValueError, match="k400"):  # an unknown tag names the valid ones
        vov3d.create_model("x3d_m", pretrained="no_such_tag")
