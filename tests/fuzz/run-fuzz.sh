#!/bin/sh
# run-fuzz.sh FUZZER SECONDS - run a libFuzzer target for SECONDS seconds from
# a small seed corpus of valid calls; exit non-zero on any finding.
set -eu
fuzzer=$1
seconds=${2:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
# Mode byte 1 = direct SKS call: getDeviceInfo, enumerateKeys(0), enumeratePINPolicies,
# getKeyAttributes(1), verifyPIN(1, "1234"), abortProvisioningSession(1).
printf '\001\100' > "$work/corpus/device-info"
printf '\001\101\000\000\000\000' > "$work/corpus/enumerate-keys"
printf '\001\114' > "$work/corpus/pin-policies"
printf '\001\102\000\000\000\001' > "$work/corpus/key-attributes"
printf '\001\110\000\000\000\001\000\0041234' > "$work/corpus/verify-pin"
printf '\001\003\000\000\000\001' > "$work/corpus/abort"
# Mode byte 0 = APDUs: one short SKS call (getDeviceInfo) and a GET RESPONSE.
printf '\000\000\006\200\020\000\000\001\100\000\005\000\300\000\000\000' > "$work/corpus/apdu-call"
# A chained call: two parts.
printf '\000\000\006\220\020\000\000\001\101\000\011\200\020\000\000\004\000\000\000\000' > "$work/corpus/apdu-chain"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$work/corpus" > "$work/log" 2>&1 || status=$?
tail -n 25 "$work/log"
echo "fuzz: $(basename "$fuzzer") ran ${seconds}s, exit status $status"
exit "$status"
