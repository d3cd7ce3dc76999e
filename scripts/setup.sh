#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install vov3d with its test and export (onnx, onnxruntime) dependencies.
#   VOV3D_VENV   where the environment lives            (default: .venv in the repository root)
#   VOV3D_TORCH  the torch requirement to install first (default: torch==2.13.0, the local CPU wheel;
#                e.g. VOV3D_TORCH="torch==2.5.1" or a CUDA index URL's build elsewhere)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VOV3D_VENV:-$root/.venv}"
torch_req="${VOV3D_TORCH:-torch==2.13.0}"
python="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# Re-install only when the requirements changed: the stamp holds a hash of what was installed.
stamp="$venv/.vov3d-installed"
want="$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -c1-16) $torch_req"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  constraints="$(mktemp)"
  # The torch pin comes from VOV3D_TORCH; every other line of constraints.txt applies as written.
  { grep -v '^torch==' "$root/constraints.txt" | grep -v '^#' || true; echo "$torch_req"; } > "$constraints"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$torch_req"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" -e "$root[test,export]"
  rm -f "$constraints"
  echo "$want" > "$stamp"
fi
