#!/usr/bin/env bash
# The main job on the built-in data (docs/main_job.md): set up (scripts/setup.sh), write the built-in
# synthetic temporal dataset at its easy level if it is missing, train VoV3D-M on the CPU through the
# engine (configs/Synthetic/demo_vov3d_M.yaml), test it with several views, and print the results:
# top-1, top-5, per-class accuracy, time, and the paths of the checkpoint, log, plots and predictions.
#   VOV3D_DATA        where the dataset goes     (default: data/synth_easy in the repository root)
#   VOV3D_OUTPUT      the engine's OUTPUT_DIR    (default: output/Synthetic/demo_vov3d_M)
#   VOV3D_NUM_TRAIN, VOV3D_NUM_VAL, VOV3D_NUM_TEST   videos per split (default: 10800, 120, 240)
#   VOV3D_SKIP_SETUP  1: use the environment as it is (do not run scripts/setup.sh)
# Extra arguments are KEY VALUE overrides for the engine, e.g. `bash scripts/run.sh SOLVER.MAX_EPOCH 4`.
# A second run resumes from the last checkpoint (TRAIN.AUTO_RESUME); remove VOV3D_OUTPUT to train again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "${VOV3D_SKIP_SETUP:-0}" = 1 ] || "$root/scripts/setup.sh"
bin="${VOV3D_VENV:-$root/.venv}/bin"
data="${VOV3D_DATA:-$root/data/synth_easy}"
out="${VOV3D_OUTPUT:-$root/output/Synthetic/demo_vov3d_M}"
sizes="${VOV3D_NUM_TRAIN:-10800} ${VOV3D_NUM_VAL:-120} ${VOV3D_NUM_TEST:-240}"
cfg="$root/configs/Synthetic/demo_vov3d_M.yaml"
started=$(date +%s)

echo "== built-in dataset, easy level: $data/kinetics"
mkdir -p "$data" "$out"
# (python -c, not a script on stdin: the generator's worker processes re-import the main module)
"$bin/python" -c '
import json, sys
from vov3d.data.synth import generate_dataset
train, val, test = (int(v) for v in sys.argv[2:5])
summary = generate_dataset(sys.argv[1], "kinetics", level="easy", num_train=train, num_val=val, num_test=test)
print(json.dumps(summary, indent=1))
' "$data" $sizes > "$data/kinetics-summary.json"
"$bin/python" - "$data/kinetics-summary.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
f = s["formats"]["kinetics"]
state = "reused" if f["reused"] else f"written in {s['seconds']:.1f} s"
print(f"{state}: {s['videos_per_split']} videos, {s['frame_size'][0]}x{s['frame_size'][1]}, "
      f"{s['frames']['kinetics_30fps']} frames; summary in {sys.argv[1]}")
EOF
data_done=$(date +%s)

echo "== training and testing VoV3D-M on the CPU: $cfg"
"$bin/python" "$root/tools/run_net.py" --cfg "$cfg" DATA.PATH_TO_DATA_DIR "$data/kinetics" \
  DATA.CLASS_NAMES "$data/kinetics/classes.txt" OUTPUT_DIR "$out" "$@"
finished=$(date +%s)

echo "== results"
"$bin/python" - "$out" "$((data_done - started))" "$((finished - data_done))" <<'EOF'
import json, re, sys
from pathlib import Path

from vov3d.engine.predictions import read_predictions

out, data_seconds, job_seconds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
log = out / "log.txt"
finals = [json.loads(m.group(1)) for m in re.finditer(r"json_stats: (\{.*\"split\": \"test_final\".*\})", log.read_text())]
final = finals[-1] if finals else {}
records = read_predictions(out / "predictions.jsonl")
names = sorted({(r["label"], r["label_name"]) for r in records})
print(f"{'class':<58} {'videos':>6} {'top-1 %':>8}")
for label, name in names:
    mine = [r for r in records if r["label"] == label]
    correct = sum(r["top_ids"][0] == label for r in mine)
    print(f"{str(label) + ' ' + name:<58} {len(mine):>6} {100.0 * correct / len(mine):>8.1f}")
checkpoints = sorted((out / "checkpoints").glob("*.pyth"))
rows = [
    ("top-1 (test_final)", f"{final.get('top1_acc', '?')} %"),
    ("top-5 (test_final)", f"{final.get('top5_acc', '?')} %"),
    ("time", f"{data_seconds + job_seconds} s after set-up: dataset {data_seconds} s, training + testing {job_seconds} s"),
    ("checkpoint", str(checkpoints[-1]) if checkpoints else "?"),
    ("log", str(log)),
    ("plots", f"{out / 'training_curves.png'}  {out / 'confusion_matrix.png'}"),
    ("predictions", str(out / "predictions.jsonl")),
]
width = max(len(k) for k, _ in rows)
print("\n".join(f"{k:<{width}} : {v}" for k, v in rows))
EOF
