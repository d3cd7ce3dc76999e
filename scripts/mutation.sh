#!/usr/bin/env bash
# Mutation testing of src/vov3d/checkpoint.py and src/vov3d/data/ with mutmut (configured in setup.cfg).
#
#   scripts/mutation.sh                               # every mutant (hours on 2 cores)
#   scripts/mutation.sh 'vov3d.checkpoint.*'          # only mutants whose name matches (fnmatch)
#   MUTATION_TIME_LIMIT=3600 scripts/mutation.sh ...  # stop after an hour; the results so far are kept
#
# mutmut copies the tree into mutants/ and keeps its results there, so a second run resumes.
# Afterwards: `.venv/bin/mutmut results` lists the survivors, `.venv/bin/mutmut show <name>` shows one.
# The summary printed at the end counts killed, survived, timeout and not-yet-checked mutants.
set -uo pipefail
cd "$(dirname "$0")/.."
MUTMUT="${MUTMUT:-.venv/bin/mutmut}"
LIMIT="${MUTATION_TIME_LIMIT:-0}"   # seconds; 0 = no limit

if [ "$LIMIT" -gt 0 ]; then
    timeout --signal=INT --kill-after=60 "$LIMIT" nice -n 19 "$MUTMUT" run --max-children "${MUTATION_JOBS:-2}" "$@"
else
    nice -n 19 "$MUTMUT" run --max-children "${MUTATION_JOBS:-2}" "$@"
fi
status=$?
echo "mutmut run exited with status $status"
"$MUTMUT" results --all true > mutants/results.txt 2>&1 || true
echo "per-status counts (mutants/results.txt):"
awk -F': ' 'NF == 2 {print $2}' mutants/results.txt | sort | uniq -c | sort -rn
exit 0
