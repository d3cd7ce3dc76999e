"""benchmarks/inference.py (issue 4, items 1-3): every lever runs side by side in one run, plain_defaults (the
plain model with glibc malloc at its defaults) in a child process; run here at a tiny size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "inference.py"


def test_inference_benchmark_times_every_lever_against_both_plain_baselines(tmp_path):
    args = ["--models", "vov3d_m", "--batch-sizes", "1", "2", "--frames", "4", "--size", "32", "--iters", "1",
            "--levers", "plain_defaults", "plain", "kernels", "--cache-dir", str(tmp_path)]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "# plain_defaults: timed in a child process, allocator: glibc malloc at its defaults" in result.stdout
    # The summary table: model batch lever ms/clip vs-plain vs-glibc vs-floor min max|diff|.
    summary = result.stdout.split("# floors from the best of start and end")[1]
    rows = {(int(r[1]), r[2]): r for r in (line.split() for line in summary.splitlines())
            if len(r) == 9 and r[0] == "vov3d_m"}
    assert set(rows) == {(b, lever) for b in (1, 2) for lever in ("plain_defaults", "plain", "kernels")}
    for batch in (1, 2):
        assert rows[(batch, "plain")][4] == "1.00x" and rows[(batch, "plain_defaults")][5] == "1.00x"
        kernels = rows[(batch, "kernels")]
        ms, vs_plain, vs_glibc = float(kernels[3]), float(kernels[4][:-1]), float(kernels[5][:-1])
        # Each speed-up is that baseline's time over the kernels' time, to the rounding of the printed numbers:
        # the ratio to 0.005, the times to 0.05 ms (a slow machine's ms times the ratio's rounding counts too).
        for vs, baseline in ((vs_glibc, "plain_defaults"), (vs_plain, "plain")):
            assert abs(vs * ms - float(rows[(batch, baseline)][3])) <= 0.005 * ms + 0.05 * vs + 0.05 + 1e-6, baseline
        assert float(kernels[8]) < 1e-4  # outputs within 1e-4 of the plain model
