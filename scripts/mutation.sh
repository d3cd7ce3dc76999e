#!/usr/bin/env bash
# Mutation testing of src/vov3d/checkpoint.py and src/vov3d/data/ with mutmut (configured in setup.cfg).
#
#   scripts/mutation.sh                                   # every mutant not checked yet (resumes)
#   scripts/mutation.sh 'vov3d.checkpoint.*'              # re-check every mutant whose name matches (fnmatch)
#   scripts/mutation.sh --unchecked '!vov3d.data.synth.*' # only the mutants not checked yet; '!' excludes
#   scripts/mutation.sh --survivors 'vov3d.data.decoder.*'  # re-check survivors, untested and unchecked ones
#   scripts/mutation.sh --sample 200 'vov3d.data.synth.*'   # check 200 of the matching mutants, drawn at random
#   MUTATION_TIME_LIMIT=3600 scripts/mutation.sh ...      # stop after an hour; the results so far are kept
#
# mutmut copies the tree into mutants/ and keeps its results there. Mutants named on the command
# line are re-checked even if they were checked before; without names only unchecked ones run.
# Afterwards: `.venv/bin/mutmut results` lists the survivors, `.venv/bin/mutmut show <name>` shows one.
# The summary printed at the end counts killed, survived, timeout and not-yet-checked mutants.
# docs/testing.md has the last full run's score and what the survivors are.
set -uo pipefail
cd "$(dirname "$0")/.."
MUTMUT="${MUTMUT:-${VOV3D_VENV:-.venv}/bin/mutmut}"
LIMIT="${MUTATION_TIME_LIMIT:-0}"   # seconds; 0 = no limit
if [ ! -x "$MUTMUT" ]; then   # the project's environment, plus the mutmut these results were made with
    bash scripts/setup.sh
    "${VOV3D_VENV:-.venv}/bin/python" -m pip install -q --disable-pip-version-check "mutmut==3.8.1"
fi

select_status="" sample=0
case "${1:-}" in
    --unchecked) select_status="not checked"; shift ;;
    --survivors) select_status="survived|no tests|not checked"; shift ;;
    --sample) select_status="*"; sample="$2"; shift 2 ;;   # a seeded draw: the same mutants every time
esac
if [ -n "$select_status" ]; then
    # mutmut's own listing, filtered by status and by the patterns (all if none; '!pattern' excludes)
    mapfile -t names < <("$MUTMUT" results --all true 2>/dev/null | python3 -c '
import fnmatch, random, sys
statuses, sample = sys.argv[1].split("|"), int(sys.argv[2])
exclude = [p[1:] for p in sys.argv[3:] if p.startswith("!")]
include = [p for p in sys.argv[3:] if not p.startswith("!")] or ["*"]
names = []
for line in sys.stdin:
    name, sep, state = line.strip().rpartition(": ")
    if sep and (state in statuses or statuses == ["*"]) and any(fnmatch.fnmatchcase(name, p) for p in include) \
            and not any(fnmatch.fnmatchcase(name, p) for p in exclude):
        names.append(name)
if sample:
    names = sorted(random.Random(15).sample(sorted(names), min(sample, len(names))))
print("\n".join(names))
' "$select_status" "$sample" "$@" | sed '/^$/d')
    if [ "$sample" -gt 0 ]; then echo "${#names[@]} mutants drawn at random"; else echo "${#names[@]} mutants ($select_status)"; fi
    [ "${#names[@]}" -gt 0 ] || exit 0
    set -- "${names[@]}"
fi

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
