#!/usr/bin/env bash
# Install the Debian packages gridpilot needs, only those missing. `--tests` adds what the
# test suite needs. Uses sudo when not root.
set -euo pipefail
pkgs=(gcc pkg-config meson ninja-build tzdata
      libcurl4-openssl-dev libcjson-dev libev-dev liblua5.4-dev libsqlite3-dev)
# Without their recommends: libplplot-dev would bring cmake and the OCaml, D and Lua bindings.
lean=(libplplot-dev plplot-driver-cairo)
if [ "${1:-}" = "--tests" ]; then
    pkgs+=(libcmocka-dev libmicrohttpd-dev valgrind)
fi
missing() {
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}
mapfile -t need < <(missing "${pkgs[@]}")
mapfile -t need_lean < <(missing "${lean[@]}")
[ ${#need[@]} -eq 0 ] && [ ${#need_lean[@]} -eq 0 ] && exit 0
echo "installing: ${need[*]} ${need_lean[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
export DEBIAN_FRONTEND=noninteractive
if [ ${#need[@]} -gt 0 ]; then
    ${sudo:+$sudo -E} apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ${#need_lean[@]} -gt 0 ]; then
    ${sudo:+$sudo -E} apt-get install -y -qq --no-install-recommends "${need_lean[@]}" >/dev/null
fi
