#!/usr/bin/env bash
# Install the Debian packages gridpilot needs, only those missing. `--tests` adds what the
# test suite needs. Uses sudo when not root.
set -euo pipefail
pkgs=(gcc pkg-config meson ninja-build tzdata
      libcurl4-openssl-dev libcjson-dev libev-dev liblua5.4-dev libsqlite3-dev)
if [ "${1:-}" = "--tests" ]; then
    pkgs+=(libcmocka-dev libmicrohttpd-dev valgrind)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
