"""The import rules of ``.importlinter`` (issue 15): the package keeps them, and a planted import that breaks
one is caught, so the check can fail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / ".importlinter"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_root: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the repository's contracts on the ``vov3d`` package found under ``package_root``."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(CONFIG), "--no-cache"], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_the_package_keeps_every_import_rule(tmp_path):
    result = lint_imports(REPO / "src", tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module,planted,contract",
    [
        ("models/network.py", "import vov3d.ops.library", "models and ops never import each other"),
        ("ops/library.py", "import vov3d.accel.bn_folding", "Layers ("),
        ("data/params.py", "import vov3d.models.registry", "data imports no model code"),
        ("utils/cpu_features.py", "import vov3d.checkpoint", "Layers ("),
    ],
)
def test_a_planted_import_breaking_a_rule_is_caught(tmp_path, module, planted, contract):
    root = tmp_path / "root"
    shutil.copytree(REPO / "src" / "vov3d", root / "vov3d", ignore=shutil.ignore_patterns("__pycache__"))
    target = root / "vov3d" / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    result = lint_imports(root, tmp_path)
    assert result.returncode != 0, result.stdout[-4000:]
    report = " ".join(result.stdout.split())  # contract names may wrap
    status = re.search(re.escape(contract) + r".*?(KEPT|BROKEN)", report)
    assert status is not None and status.group(1) == "BROKEN", result.stdout[-4000:]
    importer = "vov3d." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {planted.split()[1]}" in result.stdout
