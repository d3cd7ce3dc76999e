"""`vov3d export`: ONNX and TorchScript round trips checked here independently (onnxruntime / torch.jit on
another input size), and the message when the optional ONNX packages are missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import onnxruntime
import pytest
import torch

from task_models import trained_like
from vov3d.checkpoint import save_checkpoint
from vov3d.engine import export


@pytest.mark.parametrize("fmt, name", [("onnx", "x3d_m"), ("onnx", "vov3d_m"), ("torchscript", "x3d_m")])
def test_round_trip(tmp_path, capsys, fmt, name):
    model = trained_like(name, num_classes=7, seed=1, std=0.005)  # logits of a few units, as trained ones
    ckpt = save_checkpoint(tmp_path / f"{name}.pyth", model)
    out = tmp_path / f"{name}.{fmt}"
    status = export.main(["--model", name, "--checkpoint", str(ckpt), "--format", fmt, "--out", str(out),
                          "--frames", "4", "--size", "32"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    reported = float(re.search(r"max \|difference\| to PyTorch (\S+)", printed).group(1))
    assert reported <= 1e-4 and "ok" in printed.splitlines()[-1]

    clip = torch.randn(2, 3, 6, 48, 40)  # another length and size than the export's example (4x32x32)
    with torch.no_grad():
        want = model(clip)
    assert want.abs().max() > 2  # outputs large enough for the comparison to mean something
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(np.asarray(session.run(["logits"], {"clip": clip.numpy()})[0]))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in favour of torch.export
            got = torch.jit.load(str(out))(clip)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left


def test_missing_onnxruntime_is_a_clear_message(tmp_path):
    out = tmp_path / "m.onnx"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["onnxruntime"] = None  # as if it were not installed
        from vov3d.engine.export import main
        sys.exit(main(["--model", "vov3d_m", "--format", "onnx", "--out", {str(out)!r}, "--frames", "4", "--size", "32"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 1
    assert "vov3d export: error: ONNX export needs the optional packages onnx and onnxruntime" in proc.stderr
    assert "pip install 'vov3d[export]'" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_bad_arguments(tmp_path, capsys):
    assert export.main(["--model", "vov3d_m", "--format", "onnx", "--out", str(tmp_path / "no" / "m.onnx"),
                        "--frames", "4", "--size", "32"]) == 1
    assert "folder" in capsys.readouterr().err
    assert export.main(["--model", "x3d_m", "--format", "tflite", "--out", str(tmp_path / "m")]) == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
    assert export.main(["--model", "x3d_m", "--pretrained", "k700", "--format", "onnx", "--out", str(tmp_path / "m")]) == 1
    assert "unknown pretrained tag 'k700'" in capsys.readouterr().err
