#!/usr/bin/env bash
# The demo: install what is missing, build, and watch twelve simulated home batteries follow
# a virtual-power-plant target for two minutes (pass another duration as $1, e.g. 10m).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release -Dtests=disabled >/dev/null
meson compile -C build >/dev/null
echo "gridpilot demo: 12 simulated batteries follow a +/-40 kW target (Ctrl-C stops and releases them)"
exec build/core/gridpilot run -c examples/demo.json --for "${1:-2m}"
