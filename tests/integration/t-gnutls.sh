#!/bin/bash
# t-gnutls.sh - the module under GnuTLS: p11tool lists the token's objects,
# signs with a token key (--test-sign) and exports its public key; gnutls-cli
# authenticates to an openssl s_server with a token key and a certificate
# stored on the token, both named by pkcs11: URIs, once with --provider and
# once through p11-kit with the module registered in the user's p11-kit
# configuration (a copy of the installed sks.module). The PIN comes from
# GNUTLS_PIN, as for any GnuTLS tool.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
it_setup gnutls
T=$IT_TMP
it_token_with_keys

PT=(p11tool --provider "$SKS_IT_MODULE")
TOKEN_URI="pkcs11:token=$IT_TOKEN"
KEY_URI="pkcs11:token=$IT_TOKEN;object=ec256;type=private"
CERT_URI="pkcs11:token=$IT_TOKEN;object=client-ec;type=cert"

# ---- p11tool -------------------------------------------------------------------
check "p11tool --list-tokens" "${PT[@]}" --list-tokens
check_out "p11tool shows the token's URL" "URL: pkcs11:.*token=$IT_TOKEN"
check_out "p11tool shows manufacturer SKS" 'Manufacturer: SKS'
check "p11tool --list-all without login" "${PT[@]}" --list-all "$TOKEN_URI"
check_out "the public keys are listed" 'object=ec256;type=public'
check_no_out "no private key is listed before login" 'type=private'
export GNUTLS_PIN=$IT_PIN
check "p11tool --list-all --login" "${PT[@]}" --login --list-all "$TOKEN_URI"
check_out "the EC private key is listed" 'object=ec256;type=private'
check_out "the RSA private key is listed" 'object=rsa2048;type=private'
check_out "the RSA key is a 2048-bit private key" 'Type: Private key \(RSA-2048\)'
check_out "the key's certificates are listed" 'type=cert'
check_out "private keys are flagged sensitive" 'CKA_SENSITIVE'
check "p11tool --export-pubkey of the EC key" "${PT[@]}" --export-pubkey \
    "pkcs11:token=$IT_TOKEN;object=ec256;type=public" --outfile "$T/ec256-gnutls.pem"
check "the exported key parses" openssl pkey -pubin -in "$T/ec256-gnutls.pem" -out "$T/ec256-gnutls.norm"
check_cmp "GnuTLS's public key equals pkcs11-tool's" "$T/ec256.pem" "$T/ec256-gnutls.norm"
for key in ec256 rsa2048; do
    check "p11tool --test-sign with $key (sign on the token, verify in GnuTLS)" "${PT[@]}" --login \
        --test-sign "pkcs11:token=$IT_TOKEN;object=$key;type=private"
    check_out "--test-sign with $key verified the signature" 'Verifying against public key in the token\.\.\. ok'
    check_no_out "--test-sign with $key reports no error" '[Ee]rror|failed'
done

# ---- a client certificate on the token ---------------------------------------------
it_make_ca "$T/ca"
it_engine_conf "$T/engine.cnf"
check "a request for the EC token key" env OPENSSL_CONF="$T/engine.cnf" openssl req -new \
    -engine pkcs11 -keyform engine -key "$KEY_URI;pin-value=$IT_PIN" -subj "/CN=sks-client-gnutls" \
    -out "$T/client.csr"
it_ca_sign_client "$T/ca" "$T/client.csr" "$T/client.pem"
openssl x509 -in "$T/client.pem" -outform DER -out "$T/client.der" 2>/dev/null || true
check "store the client certificate on the token (pkcs11-tool --write-object)" "${P11[@]}" \
    --token-label "$IT_TOKEN" --login --pin "$IT_PIN" --write-object "$T/client.der" --type cert \
    --id 02 --label client-ec
check "p11tool --export of the stored certificate" "${PT[@]}" --export "$CERT_URI" \
    --outfile "$T/client-back.pem"
check "the exported certificate parses" openssl x509 -in "$T/client-back.pem" -out "$T/client-back.norm"
openssl x509 -in "$T/client.pem" -out "$T/client.norm" 2>/dev/null || true
check_cmp "the certificate on the token is the one stored" "$T/client.norm" "$T/client-back.norm"

printf 'GET / HTTP/1.0\r\n\r\n' >"$T/http-get"
gnutls_handshake() { # DESC gnutls-cli-prefix...
    local desc=$1
    shift
    if ! it_start_server "$T/ca"; then
        fail "$desc: start openssl s_server" "see above"
        return 0
    fi
    IT_STDIN="$T/http-get" check "$desc: gnutls-cli with key and certificate as pkcs11: URIs" \
        "$@" --x509cafile "$T/ca/ca.pem" --x509keyfile "$KEY_URI" --x509certfile "$CERT_URI" \
        -p "$IT_PORT" 127.0.0.1
    check_out "$desc: the handshake completed" 'Handshake was completed'
    check_out "$desc: the server saw the client certificate" 'Subject: CN ?= ?sks-client-gnutls'
    it_wait_server
    check_client_verified "$desc: the server verified the client certificate" sks-client-gnutls
}
gnutls_handshake "GnuTLS --provider" gnutls-cli --provider "$SKS_IT_MODULE"

# ---- through p11-kit -------------------------------------------------------------------
reg="$SKS_IT_P11KIT_DIR/sks.module"
check "the installed p11-kit registration exists" test -f "$reg"
mkdir -p "$HOME/.config/pkcs11/modules"
# The user's copy of the installed registration, naming the module under test
# by its full path (an installed file may name it relative to p11-kit's own
# module directory).
sed "s|^module:.*|module: $SKS_IT_MODULE|" "$reg" >"$HOME/.config/pkcs11/modules/sks.module" 2>/dev/null || true
# p11-kit never reads a user's configuration in a program running as root:
# then the p11-kit part runs as nobody, with this test's files handed over.
AS=()
if [ "$(id -u)" -eq 0 ]; then
    check "hand the test's files to nobody for the p11-kit part" chown -R nobody:nogroup "$T"
    AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
check "p11-kit list-modules" "${AS[@]}" p11-kit list-modules
check_out "p11-kit loads the sks module" "^sks: $SKS_IT_MODULE"
check_out "p11-kit shows the token" "token: $IT_TOKEN\$"
check "p11tool --list-tokens through p11-kit" "${AS[@]}" p11tool --list-tokens
check_out "the token is listed through p11-kit" "URL: pkcs11:.*token=$IT_TOKEN"
check_eq "p11-kit shows the token once" 1 "$(it_count "URL: pkcs11:.*token=$IT_TOKEN(;|\$)")"
gnutls_handshake "GnuTLS through p11-kit" "${AS[@]}" gnutls-cli

it_finish
