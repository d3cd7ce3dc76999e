"""benchmarks/train_throughput.py (issue 18, item 5) on the CPU at a tiny size: one row per model, columns
that agree with each other and with an independent FLOP count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vov3d.models import create_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"


def forward_flops(name: str, frames: int, size: int) -> float:
    model = create_model(name, num_classes=400).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, frames, size, size))
    return counter.get_total_flops()


def test_train_throughput_rows_on_the_cpu_at_a_tiny_size(tmp_path: Path):
    out = tmp_path / "rows.jsonl"
    args = ["--device", "cpu", "--models", "x3d_m", "vov3d_m", "--frames", "2", "--size", "32", "--batch-size", "1",
            "--steps", "1", "--warmup", "0", "--peak-n", "256", "--json", str(out)]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["model"] for r in rows] == ["x3d_m", "vov3d_m"]
    printed = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["x3d_m"], ["vov3d_m"])]
    assert len(printed) == 2
    for row, line in zip(rows, printed):
        assert (row["device"], row["procs"], row["batch"], row["frames"], row["size"]) == ("cpu", 1, 1, 2, 32)
        assert (row["precision"], row["layout"]) == ("fp32", "ncdhw")  # the CPU defaults
        assert row["clips_s"] > 0 and abs(row["ms_step"] - 1 / row["clips_s"] * 1e3) < 1e-6 * row["ms_step"]
        assert abs(row["gflops_clip"] - forward_flops(row["model"], 2, 32) / 1e9) < 1e-9
        assert abs(row["tflops"] - 3 * row["gflops_clip"] * row["clips_s"] / 1e3) < 1e-12
        assert row["peak_tflops"] > 0 and abs(row["x_peak"] - row["tflops"] / row["peak_tflops"]) < 1e-12
        assert 0 < row["x_peak"] < 1
        assert line[0] == row["model"] and float(line[8]) == round(row["clips_s"], 2)


def test_train_throughput_refuses_a_gpu_that_is_not_there():
    if torch.cuda.is_available():
        return
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda", "--models", "x3d_m"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "no CUDA GPU is present" in result.stderr
