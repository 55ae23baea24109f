#!/bin/bash
# t-provision.sh - scenario (b), the SKS seed's sample session, end to end
# with the installed programs: sks-issuer-demo prepares and verifies every
# call on the issuer token (the module in no-card mode), sks-enroll relays
# each one to the card with the CKM_VENDOR_SKS_* mechanisms; then the new
# token in everyday use, and an adversarial relay against the session.
#
# Checks: the session creates a token (the PIN policy) holding a P-256 key
# generated on the card under the user's own PIN, with its certificate;
# pkcs11-tool signs after C_Login with that PIN and OpenSSL verifies with the
# certificate, which chains to the demo CA. The session key SK, recomputed
# from the issuer's audit output (sk-derive, checked by decrypting the
# encrypted PUK with it), appears neither in the APDU trace nor, through
# pcscd + sks-card (the card out of the client's process), in the memory of
# the enrollment client paused at its end; the device certificate that
# crossed the same channel is found by the same scan. Then evil-relay attacks one message per run:
# one flipped MAC byte, a truncated encrypted PUK, a replayed call, two
# calls swapped, a call held past the session's lifetime, a session whose
# client operation limit is too small for its calls, a device certificate
# swapped on its way to the issuer. Each run fails with the card's (or the
# issuer's) refusal, and the card afterwards holds no new token and no key.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pcscd-env.sh
. "$here/pcscd-env.sh"
it_setup provision
T=$IT_TMP
# shellcheck source-path=SCRIPTDIR source=provision-env.sh
. "$here/provision-env.sh"
TRACE="$T/apdu.trace"
MCA="$IT_STATE/card/manufacturer/ca-cert.pem"
USER_PIN=5872

start_issuer() { # [ARGS...]: one enrollment's sks-issuer-demo, trusting the card's maker
    issuer_start "$T/issuer" --manufacturer-ca "$MCA" --once "$@"
}

tokens() { # the card's token labels, one per line
    "${P11[@]}" -L 2>/dev/null | sed -n 's/^ *token label *: *//p' | sort
}

ENROLL=("$BIN/sks-enroll" --module "$SKS_IT_MODULE" --scenario sks --pin "$USER_PIN")

it_mark
check "build memscan, evil-relay and sk-derive" make -C "$BUILD" -s tests/integration/memscan \
    tests/integration/evil-relay tests/integration/sk-derive
it_write_conf "$SKS_PKCS11_CONF" "$IT_STATE" "apdu_trace = $TRACE"
check "the fresh embedded card is made (pkcs11-tool -L)" "${P11[@]}" -L
check "its manufacturer CA is there for the issuer" test -s "$MCA"
it_gate "a card and the scanner"

# ---- the sample session ------------------------------------------------------------------
it_mark
start_issuer
: >"$TRACE"
check "sks-enroll (b): the SKS sample session relayed to the card" \
    "${ENROLL[@]}" --server "127.0.0.1:$ISSUER_PORT" --subject "Dana SKS"
check_out "createProvisioningSession through C_GenerateKey" 'createProvisioningSession relayed to the card: CKR_OK'
check_out "createKeyPair through C_DeriveKey" 'createKeyPair relayed to the card: CKR_OK'
check_out "closeProvisioningSession through C_DeriveKey" 'closeProvisioningSession relayed to the card: CKR_OK'
wait "$ISSUER_PID" 2>/dev/null || true
IT_OUT="$T/issuer.log"
echo "issuer log" >"$IT_OUT.cmd"
check_out "the issuer verified the device certificate path and the session attestation" 'session attestation verified'
check_out "the issuer verified the key attestation" 'key attestation verified'
check_out "the issuer verified the close attestation" 'close attestation verified'
it_gate "a completed SKS session"
check "the session's PIN policy is a new token 'PIN'" "${P11[@]}" --token-label PIN -O
keyid=$(printf 'Key.1' | od -An -tx1 | tr -d ' \n')
check "its certificate can be read" "${P11[@]}" --token-label PIN --read-object --type cert \
    --id "$keyid" -o "$T/dana.der"
check "the certificate chains to the demo CA" \
    openssl verify -CAfile "$T/issuer/demo-ca.pem" <(openssl x509 -inform DER -in "$T/dana.der")
openssl x509 -inform DER -in "$T/dana.der" -pubkey -noout >"$T/dana.pem"
printf 'provisioned by SKS\n' >"$T/msg"
check_fail "signing needs the user's PIN" 'CKR_PIN_INCORRECT' \
    "${P11[@]}" --token-label PIN --login --pin 1111 --sign -m ECDSA-SHA256 --id "$keyid" \
    -i "$T/msg" -o "$T/sig"
check "pkcs11-tool signs with the card key after C_Login with the user's PIN" \
    "${P11[@]}" --token-label PIN --login --pin "$USER_PIN" --sign -m ECDSA-SHA256 --id "$keyid" \
    --signature-format openssl -i "$T/msg" -o "$T/sig"
check "openssl verifies the signature with the certificate" \
    openssl dgst -sha256 -verify "$T/dana.pem" -signature "$T/sig" "$T/msg"

# SK from the issuer's audit output; correct when it decrypts the PUK the issuer sent.
sk_of_session() { # DESC: sets SK
    SK=""
    check "$1: SK recomputed from the issuer's audit output" "$SKDERIVE" "$T/issuer.secrets"
    check_out "$1: ... it decrypts the encrypted PUK to the issuer's PUK" '^PUK 01234567$'
    SK=$(head -n 1 "$IT_OUT")
}
sk_of_session "embedded"
devcert=$(sed -n 's/^SK_DEVICE_CERTIFICATE //p' "$T/issuer.secrets")
check "the APDU trace holds no window of SK; the device certificate is there" \
    "$MEMSCAN" --secret "$SK" --public "$devcert" --hex-trace "$TRACE"

# ---- an adversarial relay ------------------------------------------------------------------
# Messages 'C' from the issuer: #1 createProvisioningSession, #2 createPUKPolicy,
# #3 createPINPolicy, #4 createKeyPair, #5 setCertificatePath, #6 close.
other_cert="$T/issuer/demo-ca.pem"
openssl x509 -in "$other_cert" -outform DER -out "$T/not-a-device.der"
attack() { # DESC MODE [ISSUER ARGS...]
    local desc=$1 mode=$2
    shift 2
    local before after
    before=$(tokens | tr '\n' ' ')
    start_issuer "$@"
    relay_start "$mode"
    check_fail "relay: $desc: the session fails" 'failed' \
        "${ENROLL[@]}" --server "127.0.0.1:$RELAY_PORT" --subject "Mallory"
    wait "$ISSUER_PID" 2>/dev/null || true
    after=$(tokens | tr '\n' ' ')
    check_eq "relay: $desc: no token or key from it is left on the card" "$before" "$after"
}
attack "one flipped byte in createPUKPolicy's MAC" flip:C:54:2
attack "createPUKPolicy's encrypted PUK truncated" truncate:C:51:2
attack "createPUKPolicy replayed in place of createPINPolicy" replay:C:3
attack "createPINPolicy and createKeyPair swapped" swap:C:3
attack "setCertificatePath and close swapped" swap:C:5
attack "createPUKPolicy held past the session's lifetime" delay:4:C:2 --session-lifetime 2
attack "more calls than the client operation limit" pass --operation-limit 2
attack "the device certificate swapped on its way to the issuer" "certswap:$T/not-a-device.der"
IT_OUT="$T/issuer.log"
echo "issuer log" >"$IT_OUT.cmd"
check_out "the issuer refused the swapped device certificate" 'does not verify'

# ---- through pcscd + sks-card: the client's memory ------------------------------------------
it_mark
if pcscd_start && sks_card_start "$T/card"; then
    pass "pcscd with vpcd and sks-card"
else
    fail "pcscd with vpcd and sks-card" "${PCSCD_ENV_ERROR:-sks-card did not start}"
fi
it_gate "pcscd and sks-card"
PC="$T/pcsc.conf"
it_write_conf "$PC" "$T/unused" "transport = pcsc" "apdu_trace = $TRACE"
MCA="$T/card/manufacturer/ca-cert.pem"
start_issuer
: >"$TRACE"
mkfifo "$T/hold"
SKS_PKCS11_CONF="$PC" "${IN_PCSCD[@]}" "${ENROLL[@]}" --server "127.0.0.1:$ISSUER_PORT" \
    --subject "Erin PCSC" --pause-at-end <"$T/hold" >"$T/enroll-pcsc.log" 2>&1 &
ENROLL_PID=$!
it_bg "$ENROLL_PID"
exec 8>"$T/hold"
it_wait_line "$T/enroll-pcsc.log" 'paused' || true
IT_OUT="$T/enroll-pcsc.log"
echo "sks-enroll through pcscd" >"$IT_OUT.cmd"
check_out "sks-enroll (b) through pcscd + sks-card completed" 'enrollment complete'
wait "$ISSUER_PID" 2>/dev/null || true
sk_of_session "PC/SC"
devcert=$(sed -n 's/^SK_DEVICE_CERTIFICATE //p' "$T/issuer.secrets")
# The control: the new key's certificate, which the client's module holds in its cache.
check "the new key's certificate, read through pcscd" env SKS_PKCS11_CONF="$PC" "${IN_PCSCD[@]}" \
    pkcs11-tool --module "$SKS_IT_MODULE" --token-label PIN --read-object --type cert \
    --id "$keyid" -o "$T/erin.der"
erin=$(od -An -tx1 -v "$T/erin.der" 2>/dev/null | tr -d ' \n')
client=$(pgrep -f -n 'sks-enroll .*Erin PCSC' || true)
if [ -n "$client" ] && [ -n "$SK" ] && [ -n "$erin" ]; then
    check "the memory of the enrollment client at its end holds no window of SK; its new certificate is there" \
        "$MEMSCAN" --secret "$SK" --public "$erin" --pid "$client"
else
    fail "the paused enrollment client is running, SK and the certificate are known"
fi
echo >&8
exec 8>&-
wait "$ENROLL_PID" 2>/dev/null || true
check "the APDU trace through pcscd holds no window of SK; the device certificate is there" \
    "$MEMSCAN" --secret "$SK" --public "$devcert" --hex-trace "$TRACE"

it_finish
