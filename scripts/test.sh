#!/usr/bin/env bash
# The test command: set up the environment (scripts/setup.sh), then run the whole suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
exec "${VOV3D_VENV:-$root/.venv}/bin/python" -m pytest "$@"
