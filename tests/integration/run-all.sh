#!/bin/bash
# run-all.sh BUILD_DIR [TEST...] - the integration tests: install BUILD_DIR
# (`make install prefix=BUILD_DIR/integration/prefix`, the p11-kit
# registration included), build the stress driver there, then run every
# tests/integration/t-*.sh (or the ones named) against the installed
# sks-pkcs11.so. Each test prints one line per check and its own
# "N passed, M failed"; this script ends with the total in the same form and
# exits non-zero when any check failed or a test did not finish.
#
# Environment: SKS_IT_KEEP=1 keeps each test's temporary directory;
# SKS_IT_TIMEOUT bounds every single command (seconds, default 120).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [TEST...]" >&2; exit 2; }
build=$(cd "$1" && pwd)
shift
work="$build/integration"
prefix="$work/prefix"

total_passed=0
total_failed=0
summary() { # the closing line, also kept in $work/summary for scripts/test-all.sh
    echo
    echo "$total_passed passed, $total_failed failed" | tee "$work/summary"
    [ "$total_failed" -eq 0 ]
}

rm -rf "$work"
mkdir -p "$work/logs"
echo "==> installing $build into $prefix"
if ! make -C "$build" -s install prefix="$prefix" \
    p11kitmoduledir="$prefix/share/p11-kit/modules" >"$work/logs/install.log" 2>&1; then
    tail -n 30 "$work/logs/install.log"
    echo "FAIL run-all: make install into $prefix"
    total_failed=1
    summary
    exit 1
fi
echo "==> building the test drivers"
if ! make -C "$build" -s tests/integration/p11-threads >"$work/logs/p11-threads-build.log" 2>&1; then
    tail -n 30 "$work/logs/p11-threads-build.log"
    echo "FAIL run-all: building tests/integration/p11-threads (t-stress will fail)"
    total_failed=$((total_failed + 1))
fi
if ! make -C "$build" -s tests/integration/p11-pcsc >"$work/logs/p11-pcsc-build.log" 2>&1; then
    tail -n 30 "$work/logs/p11-pcsc-build.log"
    echo "FAIL run-all: building tests/integration/p11-pcsc (t-pcsc will fail)"
    total_failed=$((total_failed + 1))
fi
if ! make -C "$build" -s tests/integration/nopin-key >"$work/logs/nopin-key-build.log" 2>&1; then
    tail -n 30 "$work/logs/nopin-key-build.log"
    echo "FAIL run-all: building tests/integration/nopin-key (t-firefox will fail)"
    total_failed=$((total_failed + 1))
fi

if ! make -C "$build" -s tests/integration/dkek-p11 >"$work/logs/dkek-p11-build.log" 2>&1; then
    tail -n 30 "$work/logs/dkek-p11-build.log"
    echo "FAIL run-all: building tests/integration/dkek-p11 (t-dkek will fail)"
    total_failed=$((total_failed + 1))
fi
if ! make -C "$build" -s tests/integration/p11-steps tests/integration/pcsc-hold \
    tests/integration/pcsc-fault.la >"$work/logs/pcsc-faults-build.log" 2>&1; then
    tail -n 30 "$work/logs/pcsc-faults-build.log"
    echo "FAIL run-all: building p11-steps, pcsc-hold and pcsc-fault.la (t-pcsc-faults will fail)"
    total_failed=$((total_failed + 1))
fi

export SKS_IT_PREFIX="$prefix"
export SKS_IT_MODULE="$prefix/lib/pkcs11/sks-pkcs11.so"
export SKS_IT_P11KIT_DIR="$prefix/share/p11-kit/modules"
export SKS_IT_THREADS="$build/tests/integration/p11-threads"
export SKS_IT_PCSC_DRIVER="$build/tests/integration/p11-pcsc"
export SKS_IT_NOPIN_KEY="$build/tests/integration/nopin-key"
export SKS_IT_SKS_TOOL="$prefix/bin/sks-tool"
export SKS_IT_DKEK_P11="$build/tests/integration/dkek-p11"
export SKS_IT_STEPS="$build/tests/integration/p11-steps"
export SKS_IT_PCSC_HOLD="$build/tests/integration/pcsc-hold"
export SKS_IT_PCSC_FAULT="$build/tests/integration/.libs/pcsc-fault.so"

if [ $# -gt 0 ]; then
    tests=()
    for t in "$@"; do tests+=("$here/${t%.sh}.sh"); done
else
    tests=("$here"/t-*.sh)
fi

started=$(date +%s)
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    log="$work/logs/$name.log"
    echo
    echo "==> $name"
    t0=$(date +%s)
    rc=0
    bash "$t" 2>&1 | tee "$log" || true
    rc=${PIPESTATUS[0]}
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        total_passed=$((total_passed + BASH_REMATCH[1]))
        total_failed=$((total_failed + BASH_REMATCH[2]))
        if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then
            echo "FAIL run-all: $name exited with status $rc after reporting no failure"
            total_failed=$((total_failed + 1))
        fi
    else
        echo "FAIL run-all: $name stopped early (status $rc) without its summary line"
        total_failed=$((total_failed + 1))
    fi
    echo "    ($name: $(($(date +%s) - t0)) s)"
done
echo
echo "integration tests took $(($(date +%s) - started)) s; logs in $work/logs"
summary
