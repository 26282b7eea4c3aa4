#!/usr/bin/env bash
# simulate benchmark: one year at 5-minute steps for 1,000 sim devices (the issue's figure),
# and the same year for 10 devices as the baseline of the ratio (per-device cost vs fixed
# cost per step). Prints wall time and steps per second; never fails on a number.
#   bash tests/bench/bench_simulate.sh [BUILD_DIR] [DEVICES] [FROM] [TO]
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$src/build}" && pwd)"
devices="${2:-1000}"
from="${3:-2026-01-01}"
to="${4:-2027-01-01}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
config() { # $1 = device count
    cat > "$work/bench.json" <<JSON
{ "site": "bench", "state_dir": "var", "plugin_path": ["$build/plugins"], "tick": "5m",
  "strategy": { "file": "$src/strategies/fleet_wave.lua",
                "params": { "amplitude_w": $(( $1 * 2000 )), "period_s": 86400 } },
  "tariff": { "default": { "import": 0.25, "export": 0.05 } },
  "adapters": [ { "id": "sim", "plugin": "sim", "config": {
      "devices": [ { "id": "b", "own_mode": "idle" } ], "count": $1, "seed": 1 } } ] }
JSON
}
run() { # $1 = device count
    config "$1"
    local t0 t1
    t0=$(date +%s.%N)
    "$build/core/gridpilot" simulate -c "$work/bench.json" --from "$from" --to "$to" \
        --step 5m --out "$work/out" --series site 2>"$work/err" || { cat "$work/err"; exit 1; }
    t1=$(date +%s.%N)
    local steps
    steps=$(grep -o '"steps":[[:space:]]*[0-9]*' "$work/out/report.json" | grep -o '[0-9]*$')
    awk -v n="$1" -v s="$steps" -v a="$t0" -v b="$t1" -v sw="$(grep -o '"steps_per_s":[[:space:]]*[0-9.]*' "$work/out/report.json" | grep -o '[0-9.]*$')" \
        'BEGIN { w = b - a; printf "%6d devices: %d steps, %.1f s wall (baseline run included), strategy run %.0f steps/s, %.2f M device-steps/s\n", n, s, w, sw, n * sw / 1e6 }'
}
echo "simulate $from .. $to at 5m steps (fleet_wave strategy, site series)"
run 10
run "$devices"
