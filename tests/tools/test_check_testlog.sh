#!/bin/bash
# tools/check-testlog on fake meson testlog.json files: a suite asked for that was skipped as a
# whole, or that ran nothing, fails the run (meson itself counts SKIP as a pass); the totals
# line counts passed, failed and skipped tests; then tools/test-all's meson_suites step, run
# against a stand-in meson, fails on such a log and adds its counts to the closing totals.
# Usage: test_check_testlog.sh PATH/TO/check-testlog PATH/TO/test-all
set -u
checker=${1:?usage: test_check_testlog.sh CHECK_TESTLOG TEST_ALL}
test_all=${2:?usage: test_check_testlog.sh CHECK_TESTLOG TEST_ALL}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0

# expect NAME WANT_RC WANT_TEXT LOG SUITE...: runs the checker, compares exit code and output.
expect() {
    local name=$1 want_rc=$2 want_text=$3 log=$4; shift 4
    local out rc
    out=$(python3 "$checker" "$log" "$@" 2>&1); rc=$?
    if [ "$rc" != "$want_rc" ] || ! grep -qF -- "$want_text" <<<"$out"; then
        echo "FAIL $name: exit $rc (want $want_rc), output:"; sed 's/^/    /' <<<"$out"
        echo "    (wanted a line with: $want_text)"
        fails=$((fails + 1))
    else
        echo "ok   $name"
    fi
}

t() {  # t NAME SUITE RESULT: one testlog line as meson 1.0 writes it (the suite in the name)
    printf '{"name": "possync:%s / %s", "result": "%s", "returncode": 0}\n' "$2" "$1" "$3"
}

{ t u1 unit OK; t u2 unit OK; t l1 lan SKIP; t l2 lan SKIP; } >"$dir/lan-skipped.json"
expect "a suite whose every test skipped fails" 1 "suite lan was skipped as a whole (2 tests SKIP)" \
    "$dir/lan-skipped.json" unit lan
expect "... and the totals count the skips" 1 "totals: 2 passed, 0 failed, 2 skipped" \
    "$dir/lan-skipped.json" unit lan
expect "not asking for that suite passes" 0 "totals: 2 passed, 0 failed, 0 skipped" \
    "$dir/lan-skipped.json" unit

{ t u1 unit OK; t s1 scenario OK; } >"$dir/no-console.json"
expect "a suite asked for with no test fails" 1 "suite console ran no test" \
    "$dir/no-console.json" unit scenario console

{ t u1 unit OK; t u2 unit SKIP; t s1 scenario FAIL; t s2 scenario TIMEOUT; t s3 scenario OK; } >"$dir/mixed.json"
expect "a skip among tests that ran is fine" 0 "suite unit: 1 ok, 0 failed, 1 skipped" \
    "$dir/mixed.json" unit scenario
expect "failures are counted (meson's exit code fails the step)" 0 "totals: 2 passed, 2 failed, 1 skipped" \
    "$dir/mixed.json" unit scenario

# Two suites: "a+b" in meson 1.0's name, or the "suite" list of later versions.
printf '{"name": "possync:scenario+slow / x", "result": "SKIP"}\n' >"$dir/two.json"
t s2 scenario OK >>"$dir/two.json"
expect "a test in two suites asked for counts once" 1 "totals: 1 passed, 0 failed, 1 skipped" \
    "$dir/two.json" scenario slow
expect "... but a suite made only of skips still fails" 1 "suite slow was skipped as a whole" \
    "$dir/two.json" slow
printf '{"name": "y", "suite": ["possync:lan"], "result": "OK"}\n' >"$dir/list.json"
expect "the suite list of later meson versions is read too" 0 "suite lan: 1 ok, 0 failed, 0 skipped" \
    "$dir/list.json" lan

: >"$dir/empty.json"
expect "an empty log fails every suite" 1 "suite unit ran no test" "$dir/empty.json" unit
expect "a missing log is a usage error" 2 "cannot read" "$dir/missing.json" unit
echo 'not json' >"$dir/bad.json"
expect "a broken log is a usage error" 2 "not JSON" "$dir/bad.json" unit

# tools/test-all's meson_suites, as it is in the script, with a meson that passes everything
# (as meson does when every test of a suite skipped) and the all-SKIP lan log from above.
mkdir -p "$dir/bin" "$dir/build/meson-logs"
printf '#!/bin/sh\nexit 0\n' >"$dir/bin/meson"
chmod +x "$dir/bin/meson"
cp "$dir/lan-skipped.json" "$dir/build/meson-logs/testlog.json"
out=$(cd "$(dirname "$checker")/.." && PATH="$dir/bin:$PATH" bash -c '
    tests_ok=0 tests_fail=0 tests_skip=0
    eval "$(sed -n "/^meson_suites() {/,/^}/p" "$1")"
    meson_suites "$2" 2 unit lan; echo "step=$? $tests_ok/$tests_fail/$tests_skip"
    meson_suites "$2" 2 unit; echo "step=$? $tests_ok/$tests_fail/$tests_skip"' _ "$test_all" "$dir/build" 2>&1)
if grep -qx "step=1 2/0/2" <<<"$out" && grep -qx "step=0 4/0/2" <<<"$out"; then
    echo "ok   test-all: a step whose lan suite all skipped fails; totals add up"
else
    echo "FAIL test-all's meson_suites:"; sed 's/^/    /' <<<"$out"
    fails=$((fails + 1))
fi

if [ $fails != 0 ]; then
    echo "$fails case(s) failed"
    exit 1
fi
echo "all cases passed"
