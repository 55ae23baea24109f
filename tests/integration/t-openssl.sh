#!/bin/bash
# t-openssl.sh - the module under OpenSSL 3 through libengine-pkcs11-openssl
# with RFC 7512 pkcs11: URIs: pkeyutl and dgst signatures (ECDSA, RSA PKCS#1
# v1.5, RSA-PSS) verified by openssl without the engine, self-signed
# certificates made with `req -x509` that verify, and TLS handshakes with
# client authentication (s_client with the token key against an s_server that
# requires and verifies a client certificate from a test CA).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
it_setup openssl
T=$IT_TMP
it_token_with_keys

it_engine_conf "$T/engine.cnf"
E=(env OPENSSL_CONF="$T/engine.cnf" openssl)
ENG=(-engine pkcs11 -keyform engine)
URI_EC="pkcs11:token=$IT_TOKEN;object=ec256;type=private;pin-value=$IT_PIN"
URI_RSA="pkcs11:token=$IT_TOKEN;id=%01;type=private;pin-value=$IT_PIN"

check "the pkcs11 engine loads the module" "${E[@]}" engine -t pkcs11
check_out "the engine is available" '\[ available \]'

# ---- signatures ----------------------------------------------------------------
head -c 5000 /dev/urandom >"$T/data"
openssl dgst -sha256 -binary "$T/data" >"$T/data.sha256"

check "pkeyutl -sign with the EC key (object= URI)" "${E[@]}" pkeyutl "${ENG[@]}" \
    -inkey "$URI_EC" -sign -in "$T/data.sha256" -out "$T/sig.ec"
check "openssl verifies the ECDSA signature" openssl pkeyutl -verify -pubin \
    -inkey "$T/ec256.pem" -in "$T/data.sha256" -sigfile "$T/sig.ec"

check "pkeyutl -sign with the RSA key (id= URI), PKCS#1 v1.5 SHA-256" "${E[@]}" pkeyutl \
    "${ENG[@]}" -inkey "$URI_RSA" -sign -pkeyopt digest:sha256 -in "$T/data.sha256" \
    -out "$T/sig.rsa"
check "openssl verifies the PKCS#1 v1.5 signature" openssl pkeyutl -verify -pubin \
    -inkey "$T/rsa.pem" -pkeyopt digest:sha256 -in "$T/data.sha256" -sigfile "$T/sig.rsa"

check "pkeyutl -sign with the RSA key, RSA-PSS SHA-256 salt 32" "${E[@]}" pkeyutl "${ENG[@]}" \
    -inkey "$URI_RSA" -sign -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss \
    -pkeyopt rsa_pss_saltlen:32 -in "$T/data.sha256" -out "$T/sig.pss"
check "openssl verifies the RSA-PSS signature" openssl pkeyutl -verify -pubin \
    -inkey "$T/rsa.pem" -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss \
    -pkeyopt rsa_pss_saltlen:32 -in "$T/data.sha256" -sigfile "$T/sig.pss"

check "dgst -sha384 -sign with the EC key" "${E[@]}" dgst -sha384 "${ENG[@]}" -sign "$URI_EC" \
    -out "$T/sig.dgst" "$T/data"
check "openssl dgst verifies it" openssl dgst -sha384 -verify "$T/ec256.pem" \
    -signature "$T/sig.dgst" "$T/data"

check_fail "a wrong pin-value is refused" 'PIN|[Ll]ogin|CKR_' "${E[@]}" pkeyutl "${ENG[@]}" \
    -inkey "pkcs11:token=$IT_TOKEN;object=ec256;type=private;pin-value=999999" -sign \
    -in "$T/data.sha256" -out "$T/sig.bad"
check "the right PIN still works after one wrong try" "${E[@]}" pkeyutl "${ENG[@]}" \
    -inkey "$URI_EC" -sign -in "$T/data.sha256" -out "$T/sig.ec2"

# `-engine pkcs11` makes the engine OpenSSL's default for every algorithm, so
# the module's own OpenSSL calls must not go through it (they did: the EC
# key's attributes were unavailable and the key "not found").
check "the engine reads the public key (type=public URI)" "${E[@]}" pkey -engine pkcs11 \
    -inform engine -pubin -in "pkcs11:token=$IT_TOKEN;object=ec256;type=public" -pubout \
    -out "$T/ec256-engine.pem"
check_cmp "the engine's public key equals pkcs11-tool's" "$T/ec256.pem" "$T/ec256-engine.pem"
check "the engine reads the RSA public key (id= URI)" "${E[@]}" pkey -engine pkcs11 \
    -inform engine -pubin -in "pkcs11:token=$IT_TOKEN;id=%01;type=public" -pubout \
    -out "$T/rsa-engine.pem"
check_cmp "the engine's RSA public key equals pkcs11-tool's" "$T/rsa.pem" "$T/rsa-engine.pem"

# ---- self-signed certificates ------------------------------------------------------
check "req -new -x509 with the EC key" "${E[@]}" req -new -x509 "${ENG[@]}" -key "$URI_EC" \
    -subj "/CN=sks self-signed EC" -days 2 -sha256 \
    -addext basicConstraints=critical,CA:TRUE -out "$T/self-ec.pem"
check "the EC self-signed certificate verifies" openssl verify -CAfile "$T/self-ec.pem" \
    "$T/self-ec.pem"
openssl x509 -in "$T/self-ec.pem" -noout -pubkey >"$T/self-ec.pub" 2>/dev/null || true
check_cmp "its public key is the token key" "$T/ec256.pem" "$T/self-ec.pub"

check "req -new -x509 with the RSA key" "${E[@]}" req -new -x509 "${ENG[@]}" -key "$URI_RSA" \
    -subj "/CN=sks self-signed RSA" -days 2 -sha256 \
    -addext basicConstraints=critical,CA:TRUE -out "$T/self-rsa.pem"
check "the RSA self-signed certificate verifies" openssl verify -CAfile "$T/self-rsa.pem" \
    "$T/self-rsa.pem"

# ---- TLS with client authentication ----------------------------------------------------
it_make_ca "$T/ca"
for kind in ec rsa; do
    if [ $kind = ec ]; then uri=$URI_EC; else uri=$URI_RSA; fi
    check "req -new: a certificate request signed by the $kind token key" "${E[@]}" req -new \
        "${ENG[@]}" -key "$uri" -subj "/CN=sks-client-$kind" -out "$T/client-$kind.csr"
    check "the $kind request's signature verifies" openssl req -verify -noout \
        -in "$T/client-$kind.csr"
    it_ca_sign_client "$T/ca" "$T/client-$kind.csr" "$T/client-$kind.pem"
done
printf 'GET / HTTP/1.0\r\n\r\n' >"$T/http-get"

tls_handshake() { # KIND URI DESC [s_client options...]
    local kind=$1 uri=$2 desc=$3
    shift 3
    if ! it_start_server "$T/ca"; then
        fail "$desc: start openssl s_server" "see above"
        return 0
    fi
    IT_STDIN="$T/http-get" check "$desc: s_client with the token key" "${E[@]}" s_client \
        -connect "127.0.0.1:$IT_PORT" "${ENG[@]}" -key "$uri" -cert "$T/client-$kind.pem" \
        -CAfile "$T/ca/ca.pem" -verify_return_error -ign_eof "$@"
    check_out "$desc: the client verified the server" 'Verify return code: 0 \(ok\)'
    check_out "$desc: the server saw the client certificate" "Subject: CN ?= ?sks-client-$kind"
    it_wait_server
    check_client_verified "$desc: the server verified the client certificate" "sks-client-$kind"
    check_no_out "$desc: no verification error on the server" 'verify error|alert'
}
tls_handshake ec "$URI_EC" "TLS 1.3, EC client key" -tls1_3
tls_handshake rsa "$URI_RSA" "TLS 1.3, RSA client key (RSA-PSS)" -tls1_3
tls_handshake rsa "$URI_RSA" "TLS 1.2, RSA client key (PKCS#1 v1.5)" -tls1_2 \
    -client_sigalgs RSA+SHA256

it_finish
