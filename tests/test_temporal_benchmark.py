"""benchmarks/temporal.py (issue 17, item 7) at a tiny size: the four arms, their budgets and the printed table."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vov3d.models import create_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "temporal.py"
ARMS = ["vov3d_m", "x3d_m, equal epochs", "x3d_m, equal time", "vov3d_m, frames shuffled"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_four_arms_at_a_tiny_size(tmp_path: Path):
    out = tmp_path / "rows.jsonl"
    result = _run("--data", str(tmp_path / "data"), "--num-train", "12", "--num-test", "6", "--frame-size", "32", "32",
                  "--num-frames", "6", "--frames", "2", "--size", "32", "--epochs", "1", "--batch-size", "12",
                  "--views", "1", "--crops", "1", "--workers", "0", "--threads", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["arm"] for r in rows] == ARMS
    assert [r["model"] for r in rows] == ["vov3d_m", "x3d_m", "x3d_m", "vov3d_m"]
    assert [r["shuffled"] for r in rows] == [False, False, False, True]
    assert all(r["level"] == "full" for r in rows)
    # The dataset was written at the full level, at the size asked for.
    manifest = json.loads((tmp_path / "data" / "kinetics" / "synth_manifest.json").read_text())
    assert manifest["settings"]["frame_size"] == [32, 32] and "level" not in manifest["settings"]
    # Budgets: equal epochs (1 epoch of 1 step), and X3D-M's steps in VoV3D-M's training time.
    vov, x3d_epochs, x3d_time, control = rows
    assert vov["steps"] == x3d_epochs["steps"] == control["steps"] == 1 and vov["epochs"] == 1.0
    seconds_per_step = x3d_epochs["train_seconds"] / x3d_epochs["steps"]
    assert x3d_time["steps"] == max(1, math.floor(vov["train_seconds"] / seconds_per_step))
    for name in ("vov3d_m", "x3d_m"):
        model = create_model(name, num_classes=12).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, 2, 32, 32))
        for row in (r for r in rows if r["model"] == name):
            assert abs(row["params_m"] - sum(p.numel() for p in model.parameters()) / 1e6) < 1e-9
            assert abs(row["gflops"] - counter.get_total_flops() / 2e9) < 1e-9
    for row in rows:
        assert 0 <= row["top1"] <= row["top5"] <= 100
        assert abs(row["clips_per_s"] - row["steps"] * 12 / row["train_seconds"]) < 1e-6 * row["clips_per_s"]
    # One line a row in the printed table, with the same top-1.
    lines = {line[:26].strip(): line[26:].split() for line in result.stdout.splitlines() if line[:26].strip() in ARMS}
    assert sorted(lines) == sorted(ARMS)
    for row in rows:
        assert float(lines[row["arm"]][0]) == round(row["top1"], 2)


def test_equal_time_arm_needs_its_reference(tmp_path: Path):
    result = _run("--data", str(tmp_path / "data"), "--arms", "x3d_m, equal time")
    assert result.returncode == 2 and "needs the arm 'vov3d_m'" in result.stderr
    assert not (tmp_path / "data").exists()
