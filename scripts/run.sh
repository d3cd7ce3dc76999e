#!/usr/bin/env bash
# The main job on the built-in data: set up (scripts/setup.sh), write the built-in synthetic dataset,
# read every split of it through the data pipeline, and report the models' size and cost.
#   VOV3D_DATA  where the dataset goes (default: data/synth in the repository root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
bin="${VOV3D_VENV:-$root/.venv}/bin"
data="${VOV3D_DATA:-$root/data/synth}"

echo "== built-in dataset: $data/kinetics"
mkdir -p "$data"
"$bin/vov3d" data synth --out "$data" --format kinetics > "$data/kinetics-summary.json"
echo "written (or reused): summary in $data/kinetics-summary.json"
echo "== reading every clip of train, val and test (30 views per test video)"
"$bin/vov3d" data check "$data/kinetics"
echo "== models (400 classes, one 16x224x224 view)"
for model in $("$bin/vov3d" models); do
  "$bin/vov3d" flops "$model"
done
