#!/bin/bash
# t-nocard.sh - no-card mode (`transport = none`) driven by OpenSC's
# pkcs11-tool, each call a new process: the single slot and its
# uninitialised issuer token, the usual first steps (init token, init PIN,
# key pairs), signatures and decryption with software keys checked with
# openssl, the keys still there in later processes (the private ones only
# after login), wrong PINs refused, and the state directory: the issuer
# token's files only (no card), private objects not readable on disk.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
it_setup nocard
T=$IT_TMP
it_write_conf "$SKS_PKCS11_CONF" "$IT_STATE" "transport = none"
TOK=(--token-label "$IT_TOKEN")
USER=(--token-label "$IT_TOKEN" --login --pin "$IT_PIN")

# ---- the slot -------------------------------------------------------------------
check "list slots in no-card mode" "${P11[@]}" -L
check_eq "exactly one slot" 1 "$(it_count '^Slot [0-9]+')"
check_out "the issuer token's slot" 'SKS no-card mode: SKS issuer'
check_out "its token is not initialised yet" 'token state: +uninitialized'

# ---- first steps and keys -----------------------------------------------------------
it_token_with_keys
check "list the token" "${P11[@]}" -L
check_out "the token carries the label of --init-token" "token label +: $IT_TOKEN"
check_out "model issuer" 'token model +: issuer'

# ---- signatures and decryption, checked by openssl -------------------------------
head -c 2000 /dev/urandom >"$T/data"
it_sign_verified "SHA256-RSA-PKCS with the software RSA key" SHA256-RSA-PKCS 01 "$T/rsa.pem"
it_sign_verified "SHA256-RSA-PKCS-PSS (salt 32)" SHA256-RSA-PKCS-PSS 01 "$T/rsa.pem" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32
it_sign_verified "ECDSA-SHA256 with the software EC key" ECDSA-SHA256 02 "$T/ec256.pem"
it_oaep_decrypts "on the issuer token"

# ---- persistence and PINs ------------------------------------------------------------
check "list objects without login (a new process)" "${P11[@]}" "${TOK[@]}" --list-objects
check_out "the public keys are there" 'Public Key Object; RSA 2048 bits'
check_no_out "the private keys are not" 'Private Key Object'
check "list objects after login" "${P11[@]}" "${USER[@]}" --list-objects
check_eq "both private keys are back" 2 "$(it_count '^Private Key Object')"
check_out "... sensitive and never extractable, as generated" \
    'Access: +sensitive, always sensitive, never extractable, local'
check_fail "a wrong user PIN is refused" 'CKR_PIN_INCORRECT' \
    "${P11[@]}" "${TOK[@]}" --login --pin 999999 --list-objects
check_fail "a wrong SO PIN is refused" 'CKR_PIN_INCORRECT' \
    "${P11[@]}" "${TOK[@]}" --login --login-type so --so-pin 11111111 --init-pin --pin 654321

# ---- the state directory -----------------------------------------------------------
if [ ! -e "$IT_STATE/card" ] && [ -d "$IT_STATE/issuer-token" ]; then
    pass "no card was made: the state holds the issuer token"
else
    fail "no card was made: the state holds the issuer token" "$(ls -la "$IT_STATE")"
fi
check_eq "four object files (two key pairs)" 4 "$(find "$IT_STATE/issuer-token" -name 'obj-*' | wc -l)"
check_eq "every file of the token is 0600" "" \
    "$(find "$IT_STATE/issuer-token" -type f ! -perm 0600)"
# Both halves of a pair carry its label: only the public key's file shows it,
# the private key's is sealed under the token's master key.
check_eq "the label rsa2048 is readable in one file (the public key)" 1 \
    "$(grep -rlF rsa2048 "$IT_STATE/issuer-token" | wc -l)"
check_eq "the label ec256 is readable in one file (the public key)" 1 \
    "$(grep -rlF ec256 "$IT_STATE/issuer-token" | wc -l)"
it_finish
