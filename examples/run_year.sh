#!/usr/bin/env bash
# Every example strategy over the whole example year: `gridpilot simulate` on each
# examples/sim_<strategy>.json (2026-01-01 .. 2027-01-01, the span of
# examples/data/octopus_2026.json), printing simulate's summary line per strategy. Not part
# of the test suite (tests/integration/test_strategies.c runs a few weeks of each).
#
#   examples/run_year.sh [BUILD_DIR [OUT_DIR]]     (defaults: build, examples/var/year)
#
# Reports stay in OUT_DIR/<strategy>/report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-examples/var/year}
[ -x "$build/core/gridpilot" ] || { echo "run_year.sh: no $build/core/gridpilot (build first)" >&2; exit 2; }
export GRIDPILOT_PLUGIN_PATH="$PWD/$build/plugins"
mkdir -p "$out"
for s in self_consumption tou_arbitrage peak_shaving fleet_target negative_price_curtail; do
  "$build/core/gridpilot" simulate -c "examples/sim_$s.json" --out "$out/$s" --series none \
    2>"$out/$s.log" || { echo "$s: simulate failed, see $out/$s.log" >&2; exit 1; }
  printf '%-24s %s\n' "$s" "$(grep -o 'cost .* violation(s)' "$out/$s.log" | tail -1)"
done
