#!/bin/bash
# t-inject.sh - scenario (a), the minidriver seed's secure key injection,
# end to end with the installed programs: sks-issuer-demo (the module in
# no-card mode) and sks-enroll (the module with the card), then the
# injected key in everyday use.
#
# Checks, on the embedded card: an RSA-2048 key injected under an RSA-OAEP
# session key and an EC P-256 key under an ECDH session key; each run
# prints the seed's steps; pkcs11-tool lists the key and its certificate,
# signs with it, and OpenSSL verifies the signature with the certificate
# the demo CA issued; the issuer's archive gives the key back
# (--recover) and it matches the certificate; the APDU trace of the
# enrollment holds neither K2's private components (any of their 16-byte
# windows, either byte order) nor S1, while the certificate that crossed
# the same channel is found (the scan can see). Then through pcscd + sks-card,
# where the card is outside the client's process: the same enrollment with
# a dump of the client's memory at its end: no private component of K2 and
# no S1 in it, while the key's certificate is (control). An adversarial
# relay (evil-relay) that flips or truncates the encrypted key, replays the
# session key in its place, or changes the ID the key is to have (the blob
# is bound to the issuer's), makes the card refuse, and no key appears.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pcscd-env.sh
. "$here/pcscd-env.sh"
it_setup inject
T=$IT_TMP
# shellcheck source-path=SCRIPTDIR source=provision-env.sh
. "$here/provision-env.sh"
TRACE="$T/apdu.trace"

# The serial of the last certificate the issuer in DIR issued.
last_serial() { # DIR
    sed -n 's/.*certificate serial \([0-9]*\) .*/\1/p' "$1.log" | tail -n 1
}

# Sign with the injected key KEYID (hex) via pkcs11-tool and verify with its certificate.
sign_and_verify() { # DESC KEYID MECH CERT_DER [pkcs11-tool prefix...]
    local desc=$1 id=$2 mech=$3 cert=$4
    shift 4
    local -a p11=("${P11[@]}")
    [ $# -eq 0 ] || p11=("$@")
    printf 'injected and used\n' >"$T/msg"
    openssl x509 -inform DER -in "$cert" -pubkey -noout >"$T/cert-pub.pem" 2>/dev/null || true
    check "$desc: pkcs11-tool signs with the injected key ($mech)" \
        "${p11[@]}" --token-label user --login --pin "$IT_PIN" --sign -m "$mech" --id "$id" \
        --signature-format openssl -i "$T/msg" -o "$T/sig"
    check "$desc: openssl verifies the signature with the issued certificate" \
        openssl dgst -sha256 -verify "$T/cert-pub.pem" -signature "$T/sig" "$T/msg"
}

# After an enrollment by the issuer in DIR: recover the archived key, compare it with the certificate.
recover_key() { # DESC DIR SERIAL
    local desc=$1 dir=$2 serial=$3
    check "$desc: the issuer's archive gives the key back (--recover $serial)" \
        env -u SKS_PKCS11_CONF "$BIN/sks-issuer-demo" --module "$SKS_IT_MODULE" --state-dir "$dir" \
        --recover "$serial"
    cp "$IT_OUT" "$T/k2.pem"
    openssl pkey -in "$T/k2.pem" -pubout -out "$T/k2-pub.pem" 2>/dev/null || true
    check_cmp "$desc: the recovered key is the certified key" "$T/k2-pub.pem" "$T/cert-pub.pem"
}

# Scan TARGET (memscan arguments) for K2 and S1, with the certificate as the control.
scan_for_secrets() { # DESC CERT_DER SECRETS_FILE MEMSCAN-TARGET-ARGS...
    local desc=$1 cert=$2 secrets=$3
    shift 3
    local s1
    s1=$(sed -n 's/^S1 //p' "$secrets" | tail -n 1)
    if [ -z "$s1" ]; then
        fail "$desc: the issuer recorded S1 (--secrets-out)"
        return 0
    fi
    check "$desc: no window of K2's private components or of S1 in it, the certificate is" \
        "$MEMSCAN" --key "$T/k2.pem" --secret "$s1" --public "$(od -An -tx1 -v "$cert" | tr -d ' \n')" "$@"
}

it_mark
check "build memscan and evil-relay" make -C "$BUILD" -s tests/integration/memscan \
    tests/integration/evil-relay
it_write_conf "$SKS_PKCS11_CONF" "$IT_STATE" "apdu_trace = $TRACE"
it_make_token user
it_gate "the user's token and the scanner"

# ---- (a) on the embedded card: RSA-OAEP session key, RSA-2048 K2 -----------------
it_mark
issuer_start "$T/iss-rsa"
it_gate "the issuer"
: >"$TRACE"
check "sks-enroll (a): RSA K1, RSA-OAEP S1, RSA-2048 K2" \
    "$BIN/sks-enroll" --module "$SKS_IT_MODULE" --server "127.0.0.1:$ISSUER_PORT" \
    --scenario inject --token user --pin "$IT_PIN" --subject "Alice Inject"
check_out "the client walked the seed's steps 1 to 31" 'step 17:.*CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP'
check_out "the client never read S1 (CKR_ATTRIBUTE_SENSITIVE)" 'step 19:.*CKR_ATTRIBUTE_SENSITIVE'
check_out "step 31 reached" 'step 31:'
it_stop "$ISSUER_PID"
serial=$(last_serial "$T/iss-rsa")
cert="$T/iss-rsa/archive/$serial.der"
check_eq "the issuer ran steps 2, 15, 16, 22, 24, 25, 26, 31" "2 15 16 22 24 25 26 31" \
    "$(grep -Eo 'step +[0-9]+:' "$T/iss-rsa.log" | tr -dc '0-9\n' | sort -nu | tr '\n' ' ' | sed 's/ $//')"
it_gate "a completed RSA enrollment"
keyid=$(printf 'K2-%s' "$serial" | od -An -tx1 | tr -d ' \n')
check "pkcs11-tool lists the injected key and its certificate" \
    "${P11[@]}" --token-label user --login --pin "$IT_PIN" -O
check_out "... the private key labelled 'Alice Inject'" 'Private Key Object; RSA'
check_out "... its certificate" 'Certificate Object.*X.509'
check "openssl: the certificate chains to the demo CA" \
    openssl verify -CAfile "$T/iss-rsa/demo-ca.pem" <(openssl x509 -inform DER -in "$cert")
sign_and_verify "RSA" "$keyid" SHA256-RSA-PKCS "$cert"
recover_key "RSA" "$T/iss-rsa" "$serial"
scan_for_secrets "APDU trace of the RSA enrollment" "$cert" "$T/iss-rsa.secrets" --hex-trace "$TRACE"

# ---- (a) on the embedded card: ECDH session key, P-256 K2 ---------------------------
it_mark
issuer_start "$T/iss-ec" --key-type ec
it_gate "the EC issuer"
: >"$TRACE"
check "sks-enroll (a): EC K1, ECDH S1, P-256 K2" \
    "$BIN/sks-enroll" --module "$SKS_IT_MODULE" --server "127.0.0.1:$ISSUER_PORT" \
    --scenario inject --token user --pin "$IT_PIN" --subject "Bob Inject" --session-key ecdh
check_out "S1 agreed by ECDH with the issuer's ephemeral key" 'step 17:.*SESSION_KEY_ECDH'
it_stop "$ISSUER_PID"
it_gate "a completed EC enrollment"
serial=$(last_serial "$T/iss-ec")
cert="$T/iss-ec/archive/$serial.der"
keyid=$(printf 'K2-%s' "$serial" | od -An -tx1 | tr -d ' \n')
sign_and_verify "EC" "$keyid" ECDSA-SHA256 "$cert"
recover_key "EC" "$T/iss-ec" "$serial"
scan_for_secrets "APDU trace of the EC enrollment" "$cert" "$T/iss-ec.secrets" --hex-trace "$TRACE"

# ---- a refused injection leaves nothing ---------------------------------------------
# The relay flips one byte of the encrypted K2 (field 6 of message 'I'),
# then truncates it, then replays the session key message in place of K2,
# then changes one byte of the new key's ID (field 10 of message 'I').
for attack in flip:I:6 truncate:I:6 flip:S:6 flip:I:10; do
    before=$("${P11[@]}" --token-label user --login --pin "$IT_PIN" -O 2>/dev/null | grep -c 'Private Key Object' || true)
    issuer_start "$T/iss-bad" --no-archive
    relay_start "$attack"
    check_fail "relay attack $attack: the card refuses, the enrollment fails" 'refused' \
        "$BIN/sks-enroll" --module "$SKS_IT_MODULE" --server "127.0.0.1:$RELAY_PORT" \
        --scenario inject --token user --pin "$IT_PIN" --subject "Eve"
    check_out "... with the card's error code" 'C_UnwrapKey\((S1|K2)\): CKR_'
    it_stop "$ISSUER_PID"
    after=$("${P11[@]}" --token-label user --login --pin "$IT_PIN" -O 2>/dev/null | grep -c 'Private Key Object' || true)
    check_eq "... and no key was created on the card" "$before" "$after"
done

# ---- through pcscd + sks-card: the client's memory ------------------------------------
it_mark
if pcscd_start && sks_card_start "$T/card"; then
    pass "pcscd with vpcd and sks-card"
else
    fail "pcscd with vpcd and sks-card" "${PCSCD_ENV_ERROR:-sks-card did not start}"
fi
it_gate "pcscd and sks-card"
PC="$T/pcsc.conf"
it_write_conf "$PC" "$T/unused" "transport = pcsc" "apdu_trace = $TRACE"
PP=(env SKS_PKCS11_CONF="$PC" "${IN_PCSCD[@]}" pkcs11-tool --module "$SKS_IT_MODULE")
check "init-token through pcscd" "${PP[@]}" --init-token --label user --so-pin "$IT_SO_PIN"
check "init-pin through pcscd" "${PP[@]}" --token-label user --login --login-type so \
    --so-pin "$IT_SO_PIN" --init-pin --pin "$IT_PIN"
issuer_start "$T/iss-pcsc"
: >"$TRACE"
mkfifo "$T/hold"
SKS_PKCS11_CONF="$PC" "${IN_PCSCD[@]}" "$BIN/sks-enroll" --module "$SKS_IT_MODULE" \
    --server "127.0.0.1:$ISSUER_PORT" --scenario inject --token user --pin "$IT_PIN" \
    --subject "Carol PCSC" --pause-at-end <"$T/hold" >"$T/enroll-pcsc.log" 2>&1 &
ENROLL_PID=$!
it_bg "$ENROLL_PID"
exec 8>"$T/hold"
it_wait_line "$T/enroll-pcsc.log" 'paused' || true
IT_OUT="$T/enroll-pcsc.log"
echo "sks-enroll through pcscd" >"$IT_OUT.cmd"
check_out "sks-enroll (a) through pcscd + sks-card completed" 'enrollment complete'
serial=$(last_serial "$T/iss-pcsc")
cert="$T/iss-pcsc/archive/$serial.der"
openssl x509 -inform DER -in "$cert" -pubkey -noout >"$T/cert-pub.pem" 2>/dev/null || true
recover_key "PC/SC" "$T/iss-pcsc" "$serial"
# The client process itself (sks-enroll), not the nsenter wrapper.
client=$(pgrep -f -n 'sks-enroll .*Carol PCSC' || true)
if [ -n "$client" ]; then
    scan_for_secrets "memory of the enrollment client at its end" "$cert" "$T/iss-pcsc.secrets" \
        --pid "$client"
else
    fail "the paused enrollment client is running"
fi
echo >&8
exec 8>&-
wait "$ENROLL_PID" 2>/dev/null || true
scan_for_secrets "APDU trace through pcscd" "$cert" "$T/iss-pcsc.secrets" --hex-trace "$TRACE"
keyid=$(printf 'K2-%s' "$serial" | od -An -tx1 | tr -d ' \n')
sign_and_verify "PC/SC" "$keyid" SHA256-RSA-PKCS "$cert" "${PP[@]}"
it_stop "$ISSUER_PID"

it_finish
