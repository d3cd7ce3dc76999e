"""Package-level behaviour: light imports, the public names, the `vov3d` command."""

from __future__ import annotations

import subprocess
import sys

import pytest

import vov3d
from vov3d.cli import main


def test_import_does_not_load_torch():
    code = "import sys, vov3d, vov3d.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_public_names_resolve_and_unknown_ones_fail():
    for name in vov3d.__all__:
        assert getattr(vov3d, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        vov3d.nope  # noqa: B018


def test_models_command_lists_the_registry(capsys):
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split() == vov3d.list_models()
