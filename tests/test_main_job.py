"""The main job (``bash scripts/run.sh``, docs/main_job.md) end to end at a tiny size: dataset, engine, table."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_run_sh_writes_the_data_trains_tests_and_prints_the_table_with_real_paths(tmp_path: Path):
    data, out = tmp_path / "data", tmp_path / "out"
    env = dict(os.environ, VOV3D_SKIP_SETUP="1", VOV3D_VENV=str(Path(sys.executable).parents[1]),
               VOV3D_DATA=str(data), VOV3D_OUTPUT=str(out), VOV3D_NUM_TRAIN="24", VOV3D_NUM_VAL="12",
               VOV3D_NUM_TEST="12")
    result = subprocess.run(["bash", str(ROOT / "scripts" / "run.sh"), "SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "8"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = result.stdout

    # The easy level was written where asked, with the sizes asked for.
    summary = json.loads((data / "kinetics-summary.json").read_text())
    assert summary["videos_per_split"] == {"train": 24, "val": 12, "test": 12}
    assert (data / "kinetics" / "train.csv").read_text().count("\n") == 24

    # The engine trained the demo's model (VoV3D-M) with the demo's config and tested it with 2 x 3 views.
    used = yaml.safe_load((out / "config.yaml").read_text())
    assert (used["MODEL"]["ARCH"], used["VOV3D"]["DEPTH"], used["SOLVER"]["MAX_EPOCH"]) == ("vov3d", 31, 1)
    log = (out / "log.txt").read_text()
    final = [json.loads(m) for m in re.findall(r"json_stats: (\{.*\"test_final\".*\})", log)]
    assert len(final) == 1
    assert "views per video   : 2 x 3" in text

    # The table: one row a test class with its accuracy from the predictions file, then top-1 as in test_final.
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 12
    for label in {r["label"] for r in records}:
        mine = [r for r in records if r["label"] == label]
        accuracy = 100.0 * sum(r["top_ids"][0] == label for r in mine) / len(mine)
        assert re.search(rf"^{label} .* {len(mine)} +{accuracy:.1f}$", text, re.M), (label, text)
    assert re.search(rf"^top-1 \(test_final\) : {re.escape(final[0]['top1_acc'])} %$", text, re.M)
    assert re.search(r"^time +: \d+ s after set-up: dataset \d+ s, training \+ testing \d+ s$", text, re.M)
    paths = dict(re.findall(r"^(checkpoint|log|predictions) +: (\S+)$", text, re.M))
    assert Path(paths["checkpoint"]).name == "checkpoint_epoch_00001.pyth"
    assert all(Path(p).is_file() for p in paths.values())
    plots = re.search(r"^plots +: (\S+) +(\S+)$", text, re.M).groups()
    assert [Path(p).read_bytes()[:8] for p in plots] == [b"\x89PNG\r\n\x1a\n"] * 2

    # A second run reuses the dataset and resumes after the last epoch: it trains nothing and tests again.
    again = subprocess.run(["bash", str(ROOT / "scripts" / "run.sh"), "SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "8"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reused:" in again.stdout
    assert "train epoch" not in (out / "log.txt").read_text().split(log)[-1]
