#!/usr/bin/env bash
# The demo: install what is missing, build, then
#   1. simulate a January week of the example year: ten homes run tou_arbitrage.lua (a
#      cost-optimal plan per battery with gp.plan) against half-hourly Octopus-shaped prices;
#      prints the savings and writes report, time series and plot to examples/var/demo/;
#   2. run live for two minutes (pass another duration as $1, e.g. 10m): twelve simulated
#      batteries follow a virtual-power-plant target, every command shown as it goes out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release -Dtests=disabled >/dev/null
meson compile -C build >/dev/null
failed=0
echo "== gridpilot demo 1/2: a simulated week of tou_arbitrage on 10 homes (examples/sim_tou_arbitrage.json)"
build/core/gridpilot simulate -c examples/sim_tou_arbitrage.json --from 2026-01-05 --to 2026-01-12 \
    --out examples/var/demo --plot 2>&1 | grep -E "simulate:|error" || failed=1
[ "$failed" = 0 ] && echo "   report: examples/var/demo/report.json, plot: examples/var/demo/plot.png"
echo
echo "== gridpilot demo 2/2: 12 simulated batteries follow a +/-40 kW target live (Ctrl-C stops and releases them)"
exec build/core/gridpilot run -c examples/demo.json --for "${1:-2m}"
