#!/usr/bin/env bash
# The whole test suite: unit, plugin and integration tests; the same again under ASan and
# UBSan; the integration scenarios under valgrind. Ends with "N passed, N failed", counting
# every test case.
set -uo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh --tests || exit 1

passed=0
failed=0
run_suite() { # build-dir, meson-test args...
    local dir=$1
    shift
    meson test -C "$dir" --print-errorlogs "$@"
    local rc=$?
    local log="$dir/meson-logs/testlog.txt"
    local ok notok
    ok=$(grep -cE '^ok [0-9]+' "$log")
    notok=$(grep -cE '^not ok [0-9]+' "$log")
    passed=$((passed + ok))
    failed=$((failed + notok))
    # A program that crashed or timed out may not have printed its failures.
    if [ $rc -ne 0 ] && [ "$notok" -eq 0 ]; then failed=$((failed + 1)); fi
}

echo "== build (warnings are errors)"
[ -f build-test/build.ninja ] || meson setup build-test -Dtests=enabled >/dev/null || exit 1
meson compile -C build-test || exit 1
echo "== tests"
run_suite build-test

# The demo's build (release: -O3 sees more than -O2, e.g. snprintf truncation), so that the
# README's first command stays true; a build that fails here counts as a failed test.
echo "== release build, as examples/demo.sh makes it"
[ -f build-release/build.ninja ] ||
    meson setup build-release --buildtype=release -Dtests=disabled >/dev/null || exit 1
if meson compile -C build-release >/dev/null; then
    passed=$((passed + 1))
else
    meson compile -C build-release 2>&1 | grep -E "error|warning" | head -20
    failed=$((failed + 1))
fi

echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer"
[ -f build-asan/build.ninja ] ||
    meson setup build-asan -Dtests=enabled -Db_sanitize=address,undefined -Db_lundef=false \
        >/dev/null || exit 1
meson compile -C build-asan || exit 1
echo "== tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite build-asan

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
