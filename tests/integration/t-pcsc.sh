#!/bin/bash
# t-pcsc.sh - the module's PC/SC transport against a real pcscd: an isolated
# pcscd (pcscd-env.sh) with vsmartcard's vpcd reader and the sks-card daemon
# behind it, and the module configured with `transport = pcsc`.
#
# Checks: pkcs11-tool lists the SKS token in "Virtual PCD 00 00"; a token is
# created, keys generated, signatures verified by openssl, a decryption and a
# PIN change all go through pcscd; the OpenSSL engine signs with a card key;
# the APDU trace shows exactly one APDU per C_Sign after login; two
# processes with four threads each sign concurrently while opensc-tool sends
# foreign APDUs (SELECT of another applet) in a loop; a card reset by another
# application costs the login (CKR_USER_NOT_LOGGED_IN) and nothing else;
# killing sks-card while a process signs gives that process errors, not a
# crash, and after sks-card is back the same process signs again after a new
# login, with the card's keys intact; C_WaitForSlotEvent sees the removal and
# the insertion, and C_Finalize ends a blocking wait. Finally it prints
# signatures per second through PC/SC and on the embedded card.
#
# Needs root for the isolated pcscd: without it the test fails, unless
# SKS_ALLOW_NO_PCSCD=1 lets it skip.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pcscd-env.sh
. "$here/pcscd-env.sh"
it_setup pcsc
T=$IT_TMP
SKS_CARD=${SKS_IT_PREFIX:?run through run-all.sh}/sbin/sks-card
DRIVER=${SKS_IT_PCSC_DRIVER:-$(dirname "${SKS_IT_THREADS:-.}")/p11-pcsc}
CARD="$T/card"
SKS_CARD_LOG="$T/sks-card.log"
READER=$(vpcd_reader 35963)
TRACE="$T/apdu.trace"
FOREIGN_SELECT='00 A4 04 00 09 A0 00 00 03 08 00 00 10 00' # the PIV applet's AID
ROUNDS=${SKS_IT_PCSC_ROUNDS:-100}

# The sign/s figure of a `p11-pcsc sign` run ($IT_OUT).
rate_of() {
    sed -n 's/^signed [0-9]* in [0-9.]* s: \([0-9.]*\)\/s$/\1/p' "$IT_OUT" | tail -n 1
}

# ---- set-up ----------------------------------------------------------------------------
it_mark
check "sks-card is installed in sbin" test -x "$SKS_CARD"
check "the PC/SC test driver p11-pcsc is built" test -x "$DRIVER"
it_gate "sks-card and the test driver"

pcscd_start_or_end "the test"
it_mark
sks_card_start_checked "$CARD" "sks-card serves a fresh card in '$READER'"

# The card's own development CA signs its device certificate: the local
# issuer must trust it to provision keys on this card. (The later
# `transport` line overrides lib.sh's `transport = embedded`.)
it_write_conf "$SKS_PKCS11_CONF" "$IT_STATE" "transport = pcsc" \
    "manufacturer_ca = $CARD/manufacturer/ca-cert.pem" "apdu_trace = $TRACE"
P11=("${IN_PCSCD[@]}" pkcs11-tool --module "$SKS_IT_MODULE")
PCSC=("${IN_PCSCD[@]}" "$DRIVER")
USER=(--token-label "$IT_TOKEN" --login --pin "$IT_PIN")

# ---- the card through pcscd: pkcs11-tool and openssl ------------------------------------
check "pkcs11-tool -L through pcscd" "${P11[@]}" -L
check_out "the card's free slot is in '$READER'" "^Slot [0-9]+ \(0x[0-9a-f]+\): $READER: SKS \(uninitialized\)"
check_out "its token is uninitialised" 'token state: +uninitialized'

it_token_with_keys
check "pkcs11-tool -L shows the new token" "${P11[@]}" -L
check_out "token '$IT_TOKEN' is in '$READER'" "^Slot [0-9]+ \(0x[0-9a-f]+\): $READER: $IT_TOKEN"
check_out "its serial is 16 hex digits" 'serial num +: [0-9A-F]{16}$'

head -c 3000 /dev/urandom >"$T/data"
check "sign SHA256-RSA-PKCS through pcscd" "${P11[@]}" "${USER[@]}" --sign -m SHA256-RSA-PKCS \
    --id 01 -i "$T/data" -o "$T/sig.rsa"
check "openssl verifies the RSA signature" openssl dgst -sha256 -verify "$T/rsa.pem" \
    -signature "$T/sig.rsa" "$T/data"
check "sign ECDSA-SHA256 through pcscd" "${P11[@]}" "${USER[@]}" --sign -m ECDSA-SHA256 \
    --id 02 -i "$T/data" -o "$T/sig.ec.rs"
if it_ok && it_rs_to_der "$T/sig.ec.rs" "$T/sig.ec.der"; then
    check "openssl verifies the ECDSA signature" openssl dgst -sha256 -verify "$T/ec256.pem" \
        -signature "$T/sig.ec.der" "$T/data"
fi
it_oaep_decrypts "through pcscd"

check "change the PIN through pcscd" "${P11[@]}" "${USER[@]}" --change-pin --new-pin 24682468
check_fail "the old PIN is refused now" 'CKR_PIN_INCORRECT' "${P11[@]}" "${USER[@]}" \
    --sign -m ECDSA-SHA256 --id 02 -i "$T/data" -o "$T/sig.x"
check "the new PIN signs" "${P11[@]}" --token-label "$IT_TOKEN" --login --pin 24682468 \
    --sign -m ECDSA-SHA256 --id 02 -i "$T/data" -o "$T/sig.y"
check "change the PIN back" "${P11[@]}" --token-label "$IT_TOKEN" --login --pin 24682468 \
    --change-pin --new-pin "$IT_PIN"

it_engine_conf "$T/engine.cnf"
openssl dgst -sha256 -binary "$T/data" >"$T/data.sha256"
URI="pkcs11:token=$IT_TOKEN;object=rsa2048;type=private;pin-value=$IT_PIN"
check "the OpenSSL engine signs with the card's RSA key through pcscd" \
    "${IN_PCSCD[@]}" env OPENSSL_CONF="$T/engine.cnf" openssl pkeyutl -engine pkcs11 \
    -keyform engine -inkey "$URI" -sign -pkeyopt digest:sha256 -in "$T/data.sha256" \
    -out "$T/sig.engine"
check "openssl verifies the engine's signature" openssl pkeyutl -verify -pubin \
    -inkey "$T/rsa.pem" -pkeyopt digest:sha256 -in "$T/data.sha256" -sigfile "$T/sig.engine"

# ---- the APDU trace: one APDU per signature ----------------------------------------------
# Two runs that differ only in the number of signatures: the trace grows by
# exactly one command (and one answer) per extra signature, and that command
# is the SKS call signHashedData (method 67 = 0x43).
apdus() { grep -c '^> ' "$TRACE" || true; }
sign_apdus() { grep -Ec '^> 80100000(00[0-9A-F]{4}|[0-9A-F]{2})43' "$TRACE" || true; }
: >"$TRACE"
check "5 signatures (1 thread)" "${PCSC[@]}" sign "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" ec256 1 5
a5=$(apdus)
s5=$(sign_apdus)
: >"$TRACE"
check "25 signatures (1 thread)" "${PCSC[@]}" sign "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" ec256 1 25
a25=$(apdus)
s25=$(sign_apdus)
check_eq "20 more signatures cost exactly 20 more APDUs" 20 "$((a25 - a5))"
check_eq "... all of them signHashedData calls" 20 "$((s25 - s5))"
check_eq "a run of 25 signatures sends 25 signHashedData calls" 25 "$s25"
: >"$TRACE"
check "25 RSA-2048 signatures (1 thread)" "${PCSC[@]}" sign "$SKS_IT_MODULE" "$IT_TOKEN" \
    "$IT_PIN" rsa2048 1 25
check_eq "25 RSA-2048 signatures are 25 signHashedData calls" 25 "$(sign_apdus)"
check_eq "... and no GET RESPONSE (extended APDUs through vpcd)" 0 "$(grep -c '^> 00C0' "$TRACE" || true)"
sed -i 's/^apdu_trace = .*$//' "$SKS_PKCS11_CONF" # the rest runs without the trace

# ---- two processes, four threads each, while another application talks to the card -----
mkdir -p "$T/barrier"
rm -f "$T/stop-foreign"
(
    n=0
    while [ ! -e "$T/stop-foreign" ]; do
        if "${IN_PCSCD[@]}" opensc-tool -r "$READER" -c default -s "$FOREIGN_SELECT" \
            -s '00 CA 7F 68 00' >/dev/null 2>&1; then
            n=$((n + 1))
            echo "$n" >"$T/foreign.count"
        fi
    done
) 9>&- &
foreign=$!
it_bg "$foreign"
pids=""
for p in 1 2; do
    "${PCSC[@]}" sign "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" ec256 4 "$ROUNDS" "$T/barrier" 2 \
        >"$T/concurrent.$p" 2>&1 9>&- &
    pids="$pids $!"
    it_bg "$!"
done
p=0
for pid in $pids; do
    p=$((p + 1))
    rc=0
    timeout -k 5 "$IT_TIMEOUT" tail --pid="$pid" -f /dev/null || true
    wait "$pid" || rc=$?
    it_use_output "$T/concurrent.$p" "p11-pcsc sign (process $p)"
    if [ "$rc" -eq 0 ]; then
        pass "process $p: 4 threads x $ROUNDS ECDSA signatures, all verified, alongside process $((3 - p))"
    else
        fail "process $p: 4 threads x $ROUNDS ECDSA signatures, all verified, alongside process $((3 - p))" "exit status $rc"
        it_show_output
    fi
done
touch "$T/stop-foreign"
it_stop "$foreign"
fc=$(cat "$T/foreign.count" 2>/dev/null || echo 0)
if [ "$fc" -gt 0 ]; then
    pass "opensc-tool sent foreign APDUs meanwhile ($fc times SELECT of another applet + GET DATA)"
else
    fail "opensc-tool sent foreign APDUs meanwhile" "no exchange succeeded"
fi

# ---- a reset by another application: the login is gone, the session is not --------------
rm -f "$T/stop-loop"
"${PCSC[@]}" loop "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" ec256 "$T/stop-loop" \
    >"$T/reset.out" 2>&1 9>&- &
loop=$!
it_bg "$loop"
if it_wait_line "$T/reset.out" '^signed 1$'; then
    check "opensc-tool resets the card" "${IN_PCSCD[@]}" opensc-tool -r "$READER" --reset
    it_wait_line "$T/reset.out" '^recovered' || true
fi
touch "$T/stop-loop"
rc=0
wait "$loop" || rc=$?
it_use_output "$T/reset.out" "p11-pcsc loop (card reset by opensc-tool)"
check_eq "the signing process ends normally" 0 "$rc"
check_out "after the reset a signature answers CKR_USER_NOT_LOGGED_IN" '^error CKR_USER_NOT_LOGGED_IN$'
check_out "... C_Login on the same session works again" '^relogin CKR_OK$'
check_no_out "... and nothing else fails" '^error CKR_(DEVICE|SESSION|TOKEN|GENERAL)'
check_out "after a new login it signs again" '^recovered'

# A reset the module has not seen yet when the application logs in again.
rm -f "$T/go"
"${PCSC[@]}" relogin "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" ec256 "$T/go" \
    >"$T/relogin.out" 2>&1 9>&- &
relogin=$!
it_bg "$relogin"
if it_wait_line "$T/relogin.out" '^ready CKR_OK$'; then
    check "opensc-tool resets the card again" "${IN_PCSCD[@]}" opensc-tool -r "$READER" --reset
fi
touch "$T/go"
rc=0
wait "$relogin" || rc=$?
it_use_output "$T/relogin.out" "p11-pcsc relogin (card reset by opensc-tool)"
check_out "C_Login after an unnoticed reset: the card is asked first, the login works" \
    '^login CKR_OK$'
check_out "... and the key signs again" '^sign CKR_OK$'
check_eq "... the process ends normally" 0 "$rc"

# ---- card removal while a process signs -------------------------------------------------
rm -f "$T/stop-loop"
"${PCSC[@]}" loop "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" ec256 "$T/stop-loop" \
    >"$T/loop.out" 2>&1 9>&- &
loop=$!
it_bg "$loop"
if it_wait_line "$T/loop.out" '^signed 1$'; then
    pass "a process signs in a loop through pcscd"
    sks_card_stop
    check_eq "sks-card stops on SIGTERM (the card is removed)" 0 "$SKS_CARD_RC"
    if it_wait_line "$T/loop.out" '^error '; then
        sleep 1
        if kill -0 "$loop" 2>/dev/null; then
            pass "the signing process gets errors and keeps running"
        else
            fail "the signing process gets errors and keeps running" "it is gone"
        fi
    else
        fail "the signing process notices the removal"
    fi
    if sks_card_start "$CARD" 2>"$T/sks-card-restart.err"; then
        pass "sks-card is back with the same card"
    else
        fail "sks-card is back with the same card" "$(tr '\n' ' ' <"$T/sks-card-restart.err")"
    fi
    it_wait_line "$T/loop.out" '^recovered' || true
else
    fail "a process signs in a loop through pcscd"
fi
touch "$T/stop-loop"
rc=0
wait "$loop" || rc=$?
it_use_output "$T/loop.out" "p11-pcsc loop (sks-card stopped and started)"
check_eq "the signing process ends normally (no crash)" 0 "$rc"
check_out "the first failure is CKR_DEVICE_REMOVED" '^error CKR_DEVICE_REMOVED$'
check_out "... and the session of the removed card is gone (CKR_SESSION_HANDLE_INVALID)" \
    '^session CKR_SESSION_HANDLE_INVALID$'
check_out "the same process signs again after a new login" '^recovered'

check "the card's keys are intact" "${P11[@]}" "${USER[@]}" -O
check_out "... the RSA key" 'label: +rsa2048'
check_out "... the EC key" 'label: +ec256'
check "sign with the RSA key after the card came back" "${P11[@]}" "${USER[@]}" --sign \
    -m SHA256-RSA-PKCS --id 01 -i "$T/data" -o "$T/sig.after"
check "openssl verifies it with the public key read before" openssl dgst -sha256 \
    -verify "$T/rsa.pem" -signature "$T/sig.after" "$T/data"

# ---- slot events -----------------------------------------------------------------------
check "pkcs11-tool -L (slots of the card)" "${P11[@]}" -L
nslots=$(it_count '^Slot [0-9]+ ')
"${PCSC[@]}" wait "$SKS_IT_MODULE" $((2 * nslots)) 60 >"$T/wait.out" 2>&1 9>&- &
waiter=$!
it_bg "$waiter"
if it_wait_line "$T/wait.out" '^slots '; then
    sks_card_stop
    it_wait_line "$T/wait.out" "^event .* absent" || true
    sleep 0.5
    sks_card_start "$CARD" 2>"$T/sks-card-restart2.err" || true
fi
rc=0
timeout -k 5 "$IT_TIMEOUT" tail --pid="$waiter" -f /dev/null || true
wait "$waiter" || rc=$?
it_use_output "$T/wait.out" "p11-pcsc wait"
check_eq "C_WaitForSlotEvent returned $((2 * nslots)) events" 0 "$rc"
check_eq "... one removal per slot of the card" "$nslots" "$(it_count '^event 0x[0-9a-f]+ absent')"
check_eq "... then one insertion per slot" "$nslots" "$(it_count '^event 0x[0-9a-f]+ present')"
check_out "... the token '$IT_TOKEN' among them" "^event 0x[0-9a-f]+ present $IT_TOKEN\$"
order=$(grep -E '^event ' "$T/wait.out" | awk '{ print $3 }' | uniq | tr '\n' ' ')
check_eq "... removals first, then insertions" "absent present " "$order"
check "C_WaitForSlotEvent: CKF_DONT_BLOCK, then C_Finalize ends a blocking wait" \
    "${PCSC[@]}" finalize "$SKS_IT_MODULE"
check_out "... CKF_DONT_BLOCK answers CKR_NO_EVENT" '^dont-block CKR_NO_EVENT$'
check_out "... the blocked wait returns CKR_CRYPTOKI_NOT_INITIALIZED" \
    'the wait returned CKR_CRYPTOKI_NOT_INITIALIZED after 0\.[0-9]+ s'

# ---- signatures per second: PC/SC and embedded ------------------------------------------
for key in rsa2048 ec256; do
    n=$([ "$key" = rsa2048 ] && echo 200 || echo 1000)
    check "$n $key signatures through pcscd (1 thread)" "${PCSC[@]}" sign "$SKS_IT_MODULE" \
        "$IT_TOKEN" "$IT_PIN" "$key" 1 "$n"
    eval "pcsc_$key=\$(rate_of)"
done
EMB="$T/embedded"
it_write_conf "$EMB.conf" "$EMB"
E11=(env SKS_PKCS11_CONF="$EMB.conf" pkcs11-tool --module "$SKS_IT_MODULE")
check "embedded card: init-token" "${E11[@]}" --init-token --label "$IT_TOKEN" --so-pin "$IT_SO_PIN"
check "embedded card: init-pin" "${E11[@]}" --token-label "$IT_TOKEN" --login --login-type so \
    --so-pin "$IT_SO_PIN" --init-pin --pin "$IT_PIN"
check "embedded card: RSA-2048 key" "${E11[@]}" "${USER[@]}" --keypairgen --key-type rsa:2048 \
    --id 01 --label rsa2048
check "embedded card: P-256 key" "${E11[@]}" "${USER[@]}" --keypairgen --key-type EC:prime256v1 \
    --id 02 --label ec256
for key in rsa2048 ec256; do
    n=$([ "$key" = rsa2048 ] && echo 200 || echo 1000)
    check "$n $key signatures on the embedded card (1 thread)" env SKS_PKCS11_CONF="$EMB.conf" \
        "$DRIVER" sign "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" "$key" 1 "$n"
    eval "emb_$key=\$(rate_of)"
done
echo "# sign/s RSA-2048: PC/SC ${pcsc_rsa2048:-?}, embedded ${emb_rsa2048:-?}"
echo "# sign/s P-256:    PC/SC ${pcsc_ec256:-?}, embedded ${emb_ec256:-?}"

# ---- both transports -------------------------------------------------------------------
# The embedded card and the card in the reader side by side: distinct slot
# IDs (card index in bits 24..31) and distinct token serials.
it_write_conf "$T/both.conf" "$EMB" "transport = both" "log_level = info" \
    "manufacturer_ca = $CARD/manufacturer/ca-cert.pem"
B11=("${IN_PCSCD[@]}" env SKS_PKCS11_CONF="$T/both.conf" pkcs11-tool --module "$SKS_IT_MODULE")
check "transport = both: pkcs11-tool -L" "${B11[@]}" -L
check_out "... the embedded card's token" "^Slot [0-9]+ \(0x[0-9a-f]{1,6}\): SKS embedded card: $IT_TOKEN"
check_out "... the reader's token" "^Slot [0-9]+ \(0x1[0-9a-f]{6}\): $READER: $IT_TOKEN"
check_eq "... two tokens '$IT_TOKEN' with two serials" 2 \
    "$(grep -E 'serial num' "$IT_OUT" | sort -u | wc -l)"

# ---- pcscd goes away ---------------------------------------------------------------------
rm -f "$T/stop-loop"
"${PCSC[@]}" loop "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" ec256 "$T/stop-loop" \
    >"$T/nopcscd.out" 2>&1 9>&- &
loop=$!
it_bg "$loop"
if it_wait_line "$T/nopcscd.out" '^signed 1$'; then
    pcscd_stop
    it_wait_line "$T/nopcscd.out" '^error ' || true
    sleep 1
fi
touch "$T/stop-loop"
rc=0
wait "$loop" || rc=$?
it_use_output "$T/nopcscd.out" "p11-pcsc loop (pcscd stopped)"
check_eq "pcscd stopped under a signing process: it ends normally (no crash)" 0 "$rc"
check_out "... its calls fail with CKR_DEVICE_REMOVED or CKR_TOKEN_NOT_PRESENT" \
    '^error CKR_(DEVICE_REMOVED|TOKEN_NOT_PRESENT)$'
check_no_out "... and with nothing else" '^error CKR_(GENERAL|DEVICE_ERROR|ARGUMENTS|FUNCTION)'
# Without any pcscd, `both` still offers the embedded card and logs once.
: >"$IT_LOG"
check "no pcscd, transport = both: pkcs11-tool -L" env PCSCLITE_CSOCK_NAME="$T/no-pcscd.comm" \
    SKS_PKCS11_CONF="$T/both.conf" pkcs11-tool --module "$SKS_IT_MODULE" -L
check_out "... the embedded token is there" "SKS embedded card: $IT_TOKEN"
check_no_out "... nothing from a reader" "$READER"
check_eq "... the log says once (at info level) that PC/SC is not available" 1 \
    "$(grep -c 'info: PC/SC service not available' "$IT_LOG" || true)"

it_finish
