#!/bin/sh
# test-all.sh - the README's second command and CI's only step: install what
# is needed, then build and run every test: the unit suites (-Werror), the
# integration tests (the installed module under pkcs11-tool, OpenSSL, GnuTLS,
# NSS and p11-kit), a short run of the benchmark (never failing on a
# figure), the unit suites under AddressSanitizer +
# UndefinedBehaviorSanitizer, the libFuzzer target for 60 seconds, and
# make distcheck.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
jobs=$(nproc)
fail=0

section() { printf '\n==== %s ====\n' "$1"; }
run_check() { # builddir: make check, printing the failing logs
    if ! make -C "$1" -j"$jobs" -s check; then
        find "$1/tests" -name '*.log' -exec grep -l -E '^(FAIL|ERROR)|[1-9][0-9]*%: Checks' {} + 2>/dev/null |
            while read -r log; do echo "--- $log"; tail -n 40 "$log"; done
        return 1
    fi
}

section "build and unit tests (-Werror)"
"$top/scripts/build.sh" "$top/_build/check" --enable-werror
run_check "$top/_build/check" || fail=1

section "integration tests: the installed module under pkcs11-tool, OpenSSL, GnuTLS, NSS, p11-kit"
"$top/tests/integration/run-all.sh" "$top/_build/check" || fail=1

section "benchmark, short run (bench/README.md): fails only if the benchmark itself breaks"
"$top/bench/run-bench.sh" --short "$top/_build/check" || fail=1

section "unit tests under ASan + UBSan"
"$top/scripts/build.sh" "$top/_build/sanitize" --enable-werror --enable-sanitizers
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_check "$top/_build/sanitize" || fail=1

section "libFuzzer: card APDU entry point, 60 s"
"$top/scripts/build.sh" "$top/_build/fuzz" --enable-fuzzing --enable-sanitizers CC=clang
make -C "$top/_build/fuzz" -s tests/fuzz/fuzz-apdu
"$top/tests/fuzz/run-fuzz.sh" "$top/_build/fuzz/tests/fuzz/fuzz-apdu" "${SKS_FUZZ_SECONDS:-60}" || fail=1

section "make distcheck"
make -C "$top/_build/check" -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror >"$top/_build/distcheck.log" 2>&1 ||
    { tail -n 60 "$top/_build/distcheck.log"; fail=1; }
if [ $fail -eq 0 ]; then grep -A3 'archives ready' "$top/_build/distcheck.log" || true; fi

section "summary"
for d in check sanitize; do
    for t in "$top/_build/$d"/tests/unit/*.trs; do
        [ -f "$t" ] || continue
        echo "$d $(basename "$t" .trs): $(sed -n 's/^:test-result: //p' "$t")"
    done
done
integ_summary="$top/_build/check/integration/summary"
if [ -f "$integ_summary" ]; then
    echo "integration: $(cat "$integ_summary")"
else
    echo "integration: did not run to the end"
fi
[ $fail -eq 0 ] && echo "ALL TESTS PASSED" || echo "SOME TESTS FAILED"
exit $fail
