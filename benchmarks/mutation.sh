#!/usr/bin/env bash
# Mutation run (mutmut 3) over the measurement and pipeline code: how many one-token changes
# of the code the fast tests notice.  Too slow for CI; run by hand (tens of minutes on 1 core).
#
#   bash benchmarks/mutation.sh                      # all of MUTATE below
#   bash benchmarks/mutation.sh 'casr_cli.eval.*'     # only mutants whose name matches
#
# mutmut is not a project dependency: install it into a folder of its own (its pytest,
# click, ... copies removed so the main environment's stay in charge), or into the env:
#
#   pip install --target /work/pkgs/mutmut mutmut
#   CASR_MUTMUT_SITE=/work/pkgs/mutmut bash benchmarks/mutation.sh
#
# The run happens in a copy of src/ and tests/ under $CASR_MUT_DIR (default /tmp/casr_mutation),
# never in the work tree; the per-file counts are printed at the end and written to
# $CASR_MUT_DIR/counts.txt, every mutant's result to $CASR_MUT_DIR/results.txt
# (`cd $CASR_MUT_DIR && mutmut show NAME` prints one mutant's diff).  See docs/testing.md.
set -euo pipefail

# --- what is mutated (globs relative to the repository root; edit after a file moves)
MUTATE=(
  "src/casr_cli/eval/*"
  "src/casr_cli/training/degrade.py"
  "src/casr_cli/engine/chain.py"
  "src/casr_cli/engine/tiling.py"
  "src/casr_cli/engine/resample.py"
  "src/casr_cli/engine/deblock.py"
)
# --- which tests judge the mutants (fast files that exercise those modules)
TESTS=(
  tests/test_golden_metrics.py
  tests/test_golden_degrade.py
  tests/test_golden_eval.py
  tests/test_eval_config.py
  tests/test_golden_engine.py
  tests/test_eval.py
  tests/test_brisque.py
  tests/test_piqe.py
  tests/test_degrade.py
  tests/test_chain.py
  tests/test_tiling.py
  tests/test_deblock.py
)
# CASR_MUT_TESTS="tests/a.py tests/b.py" replaces TESTS (space-separated): a rerun of an earlier run's
# survivors needs only the tests added since (adding tests cannot revive a killed mutant)
if [[ -n "${CASR_MUT_TESTS:-}" ]]; then read -r -a TESTS <<< "$CASR_MUT_TESTS"; fi
# eval/figures.py draws PNGs (matplotlib), eval/iqa.py wraps optional pyiqa: no test runs them
# without those extras, so they are left out rather than counted as survivors.
DO_NOT_MUTATE=(
  "src/casr_cli/eval/figures.py"
  "src/casr_cli/eval/iqa.py"
)

# CASR_MUT_ONLY="src/casr_cli/eval/* src/casr_cli/training/degrade.py" replaces MUTATE (space-separated globs)
if [[ -n "${CASR_MUT_ONLY:-}" ]]; then read -r -a MUTATE <<< "$CASR_MUT_ONLY"; fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${CASR_MUT_DIR:-/tmp/casr_mutation}
PY=${PYTHON:-python}
if [[ -n "${CASR_MUTMUT_SITE:-}" ]]; then export PYTHONPATH="$CASR_MUTMUT_SITE${PYTHONPATH:+:$PYTHONPATH}"; fi
"$PY" -c "import mutmut" 2>/dev/null || { echo "mutation.sh: mutmut is not importable (see the header)" >&2; exit 2; }

rm -rf "$WORK"
mkdir -p "$WORK"
cp -r "$ROOT/src" "$ROOT/tests" "$WORK/"
find "$WORK" -name __pycache__ -prune -exec rm -rf {} +
{
  echo "[mutmut]"
  echo "source_paths = src/"
  echo "only_mutate ="
  for p in "${MUTATE[@]}"; do echo "    $p"; done
  echo "do_not_mutate ="
  for p in "${DO_NOT_MUTATE[@]}"; do echo "    $p"; done
  echo "pytest_add_cli_args_test_selection ="
  for t in "${TESTS[@]}"; do [[ -f "$ROOT/$t" ]] && echo "    $t"; done
  echo "pytest_add_cli_args ="
  echo "    -p"
  echo "    no:cacheprovider"
} > "$WORK/setup.cfg"

cd "$WORK"
filter=("$@")
"$PY" -m mutmut run --max-children 1 "${filter[@]}" > run.log 2>&1 || echo "mutation.sh: mutmut run exited $? (see $WORK/run.log)" >&2
"$PY" -m mutmut results --all true > results.txt 2>/dev/null || "$PY" -m mutmut results > results.txt
# counts per module from mutmut's result list ("  pkg.mod.x_func__mutmut_7: killed"; methods: "pkg.mod.xǁClassǁm__mutmut_3")
"$PY" - <<'EOF2' | tee counts.txt
import collections
import re

per = collections.defaultdict(collections.Counter)
for line in open("results.txt", encoding="utf-8"):
    m = re.match(r"\s*(\S+?)__mutmut_\d+: (.+)", line)
    if m:
        per[re.sub(r"\.x(_|\u01c1).*$", "", m.group(1))][m.group(2).strip()] += 1
tot = collections.Counter()
print(f"{'module':34s} {'mutants':>7s} {'killed':>7s} {'survived':>8s} {'other':>6s} {'killed %':>8s}")
for mod in sorted(per) + ["total"]:
    c = tot if mod == "total" else per[mod]
    if mod != "total":
        tot.update(c)
    n, k, s = sum(c.values()), c["killed"] + c["timeout"], c["survived"]
    print(f"{mod:34s} {n:7d} {k:7d} {s:8d} {n - k - s:6d} {100 * k / max(1, k + s):7.1f}%")
print("statuses:", dict(tot))
EOF2
