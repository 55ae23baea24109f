#!/bin/bash
# t-sks-card.sh - the sks-card daemon behind a real pcscd: an isolated pcscd
# (pcscd-env.sh) with vsmartcard's vpcd reader and sks-card on a fresh card.
# opensc-tool sees the card in "Virtual PCD 00 00" and gets SELECT and
# getDeviceInfo answered (the serial matches sks-tool's); apdu-rate.c checks
# 61xx / GET RESPONSE, that a reset forgets the selection, and measures the
# APDU rate through pcscd (below 500/s means the ~48 ms TCP stall is back);
# the card survives a pcscd restart (sks-card reconnects, logging the wait
# once); SIGTERM stops it with status 0 and the card still opens. Then the
# daemon mode: pid file, readiness, stop; and start-up failures.
#
# Needs root for the isolated pcscd: without it the test fails, unless
# SKS_ALLOW_NO_PCSCD=1 lets it skip.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pcscd-env.sh
. "$here/pcscd-env.sh"
it_setup sks-card
T=$IT_TMP
SKS_CARD=${SKS_IT_PREFIX:?run through run-all.sh}/sbin/sks-card
SKS_TOOL=${SKS_IT_SKS_TOOL:-$SKS_IT_PREFIX/bin/sks-tool}
CARD="$T/card"
SKS_CARD_LOG="$T/sks-card.log"
SKS_CARD_LOG_LEVEL=debug
READER=$(vpcd_reader 35963)
MIN_RATE=500
SELECT='00 A4 04 00 07 F0 53 4B 53 01 00 01'
DEVICE_INFO='80 10 00 00 01 40 00'
ENUM_KEYS='80 10 00 00 05 41 00 00 00 00 00'

# The data bytes of the last response printed by `opensc-tool -s` ($IT_OUT),
# as one line of hex pairs.
last_response_hex() {
    awk '/^Received/ { hex = ""; grab = 1; next }
         /^Sending/ { grab = 0 }
         grab && /^[0-9A-F][0-9A-F] / {
             n = split(substr($0, 1, 48), b, " ")
             for (i = 1; i <= n; i++) if (b[i] ~ /^[0-9A-F][0-9A-F]$/) hex = hex b[i]
         }
         END { print hex }' "$IT_OUT"
}

# SELECT, then CALL; both must answer 90 00 and the call's answer status 00.
check_call() { # DESC CALL-APDU
    check "$1: opensc-tool SELECT + call" "${IN_PCSCD[@]}" opensc-tool -r "$READER" \
        -s "$SELECT" -s "$2"
    it_ok || return 0
    check_eq "$1: SELECT and call both answer 90 00" 2 "$(it_count '^Received \(SW1=0x90, SW2=0x00\)')"
    check_eq "$1: the call's answer starts with status 00" 00 "$(last_response_hex | cut -c1-2)"
}

# CMD exits with exactly CODE and its output matches REGEX.
check_status() { # DESC CODE REGEX CMD...
    local desc=$1 code=$2 re=$3 rc=0
    shift 3
    it_run "$@" || rc=$?
    if [ "$rc" -ne "$code" ]; then
        fail "$desc" "exit status $rc, expected $code, from: $*"
        it_show_output
    elif ! grep -Eq -- "$re" "$IT_OUT"; then
        fail "$desc" "the output does not match /$re/ from: $*"
        it_show_output
    else
        pass "$desc"
    fi
}

card_present() { # is there a card in $READER? (output of opensc-tool -l in $IT_OUT)
    grep -Eq "^[0-9]+ +Yes .*$READER\$" "$IT_OUT"
}

wait_card_state() { # yes|no: wait (20 s) for the reader to hold a card or not
    local want=$1
    for _ in $(seq 1 100); do
        it_run "${IN_PCSCD[@]}" opensc-tool -l || true
        if card_present; then [ "$want" = yes ] && return 0; else [ "$want" = no ] && return 0; fi
        sleep 0.2
    done
    return 1
}

# ---- set-up --------------------------------------------------------------------------
it_mark
check "sks-card is installed in sbin" test -x "$SKS_CARD"
check "apdu-rate.c builds against pcsc-lite" \
    sh -c "cc -std=c11 -O2 -Wall -Wextra -Werror -o '$T/apdu-rate' '$here/apdu-rate.c' \
           \$(pkg-config --cflags --libs libpcsclite)"
it_gate "sks-card and the PC/SC client"

pcscd_start_or_end "the test"

it_mark
sks_card_start_checked "$CARD" \
    "sks-card --init on a fresh card directory: the reader holds a card"

# ---- the card through pcscd ----------------------------------------------------------
check "opensc-tool -l" "${IN_PCSCD[@]}" opensc-tool -l
check_out "opensc-tool -l shows '$READER' with a card" "^[0-9]+ +Yes .*$READER\$"
check "opensc-tool -a: the ATR" "${IN_PCSCD[@]}" opensc-tool -r "$READER" -a
# The ATR of vpcd_link.h; its TCK (last byte) is the XOR of T0 .. the last
# historical byte, recomputed here.
atr=$(tr -d ':\n' <"$IT_OUT" | tr 'a-f' 'A-F')
check_eq "the ATR is 3B 8E 80 01, historical bytes 80 58 'SKS card' 73 80 00 C0, and TCK" \
    "3B8E80018058534B532063617264738000C09B" "$atr"
tck=0
for ((i = 2; i < ${#atr} - 2; i += 2)); do tck=$((tck ^ 16#${atr:i:2})); done
check_eq "the ATR's TCK is the XOR of T0 .. the historical bytes" \
    "$(printf '%02X' "$tck")" "${atr: -2}"

check "opensc-tool: SELECT and getDeviceInfo" "${IN_PCSCD[@]}" opensc-tool -r "$READER" \
    -s "$SELECT" -s "$DEVICE_INFO"
check_eq "SELECT and getDeviceInfo both end with 90 00 (after GET RESPONSE)" 2 \
    "$(it_count '^Received \(SW1=0x90, SW2=0x00\)')"
info=$(last_response_hex)
check_eq "getDeviceInfo answers status 00" 00 "${info:0:2}"
# Status, ApiLevel short, Serial byte[] (docs/protocol.md: getDeviceInfo).
serial_len=$((16#${info:6:4}))
serial_hex=${info:10:$((2 * serial_len))}
# shellcheck disable=SC2059 # the format is the serial as \xHH escapes
serial=$(printf "$(printf '%s' "$serial_hex" | sed 's/../\\x&/g')")
check "sks-tool --info on the served card" "$SKS_TOOL" --state-dir "$CARD" --info
check_out "getDeviceInfo through pcscd gives sks-tool's serial ($serial)" "^Serial: +$serial\$"

check "apdu-rate: framing checks and 2000 enumerateKeys through pcscd" \
    "${IN_PCSCD[@]}" "$T/apdu-rate" "$READER" 2000
check_no_out "apdu-rate: no check failed" '^FAIL'
check_out "apdu-rate: getDeviceInfo came in parts with 61xx and GET RESPONSE" \
    '^ok +getDeviceInfo answer: [0-9]+ bytes in [2-9][0-9]* parts, final SW 9000, status 00'
check_out "apdu-rate: a reset makes the card forget the selection" \
    '^ok +after the reset a call without SELECT answers 6985'
rate=$(sed -n 's/^rate: \([0-9]*\) APDUs per second.*/\1/p' "$IT_OUT")
echo "# $IT_NAME: $(grep '^rate:' "$IT_OUT" || echo 'rate: none')"
if [ -n "$rate" ] && [ "$rate" -ge "$MIN_RATE" ]; then
    pass "APDU rate through pcscd: $rate/s (at least $MIN_RATE/s)"
else
    fail "APDU rate through pcscd: ${rate:-none}/s (at least $MIN_RATE/s)" \
        "below that, TCP_NODELAY or TCP_QUICKACK is missing and every APDU waits ~48 ms"
fi

check "opensc-tool --reset (cold)" "${IN_PCSCD[@]}" opensc-tool -r "$READER" --reset
check_call "after the power cycle" "$ENUM_KEYS"

# ---- pcscd restarts --------------------------------------------------------------------
card_pid=$SKS_CARD_PID
pcscd_stop
sleep 3 # sks-card retries every second meanwhile
if kill -0 "$card_pid" 2>/dev/null; then
    pass "sks-card keeps running while pcscd is down"
else
    fail "sks-card keeps running while pcscd is down"
fi
if pcscd_start; then
    pass "pcscd restarted (PID $PCSCD_PID)"
else
    fail "pcscd restarted" "$PCSCD_ENV_ERROR"
fi
if wait_card_state yes; then
    pass "sks-card reconnected: the restarted pcscd has the card"
else
    fail "sks-card reconnected: the restarted pcscd has the card"
    it_show_output
fi
check_call "after the pcscd restart" "$DEVICE_INFO"
it_run cat "$SKS_CARD_LOG" || true
check_eq "sks-card logged the wait for the reader once" 1 "$(it_count 'no reader at 127.0.0.1 port 35963 yet')"
connects=$(it_count 'card inserted: connected to the reader')
if [ "$connects" -ge 2 ]; then
    pass "sks-card connected to both pcscd instances ($connects connections)"
else
    fail "sks-card connected to both pcscd instances" "$connects connections logged"
fi
check_out "the debug log names the calls" 'call getDeviceInfo \(0x40\): 7 bytes in'
check_no_out "the debug log holds no answer data (the card's serial)" "$serial"

# ---- SIGTERM ---------------------------------------------------------------------------
sks_card_stop
check_eq "SIGTERM stops sks-card with exit status 0" 0 "$SKS_CARD_RC"
it_run cat "$SKS_CARD_LOG" || true
check_out "sks-card logged the stop" 'stopped by signal 15'
if wait_card_state no; then
    pass "the card is gone from '$READER' after the stop"
else
    fail "the card is gone from '$READER' after the stop"
    it_show_output
fi
check "sks-tool --info: the card still opens after the stop" "$SKS_TOOL" --state-dir "$CARD" --info
check_out "... with the same serial" "^Serial: +$serial\$"

# ---- daemon mode -----------------------------------------------------------------------
PID_FILE="$T/run/sks-card.pid"
mkdir -p "$T/run"
check "sks-card as a daemon with --pid-file returns once it runs" \
    "$SKS_CARD" --state-dir "$CARD" --pid-file "$PID_FILE"
if [ -s "$PID_FILE" ]; then
    SKS_CARD_PID=$(cat "$PID_FILE") # stopped by the cleanup if the test fails
    pass "the pid file names the daemon (PID $SKS_CARD_PID)"
else
    fail "the pid file names the daemon"
fi
if [ -n "$SKS_CARD_PID" ] && pcscd_env_is "$SKS_CARD_PID" sks-card; then
    pass "the daemon runs"
else
    fail "the daemon runs"
fi
if wait_card_state yes; then
    pass "the daemon's card is in '$READER'"
else
    fail "the daemon's card is in '$READER'"
fi
check_call "the daemon's card" "$ENUM_KEYS"
check_fail "a second daemon with the same pid file refuses to start" 'locked|running' \
    "$SKS_CARD" --state-dir "$CARD" --pid-file "$PID_FILE" --port 35964
if [ -n "$SKS_CARD_PID" ]; then
    kill -TERM "$SKS_CARD_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do pcscd_env_is "$SKS_CARD_PID" sks-card || break; sleep 0.1; done
fi
if [ -n "$SKS_CARD_PID" ] && ! pcscd_env_is "$SKS_CARD_PID" sks-card; then
    pass "SIGTERM stops the daemon"
    SKS_CARD_PID=""
else
    fail "SIGTERM stops the daemon"
fi
check "the daemon removed its pid file" test ! -e "$PID_FILE"

# ---- start-up failures -----------------------------------------------------------------
check_status "no card and no --init: exit 1 with the reason, in the foreground" 1 'no card in' \
    "$SKS_CARD" --state-dir "$T/none" --foreground
check_status "no card and no --init: exit 1 with the reason, as a daemon" 1 'no card in' \
    "$SKS_CARD" --state-dir "$T/none"
check_status "a bad --port is a usage error (exit 2)" 2 'port' "$SKS_CARD" --port 70000

pcscd_stop
it_finish
