#!/bin/bash
# t-p11kit-server.sh - the token served to another process by `p11-kit
# server` and used there through p11-kit-client.so, the way a token reaches
# another container or host (its socket forwarded with ssh -R/-L):
#
#   p11-kit server -f --provider sks-pkcs11.so -n SOCKET "pkcs11:token=sks-it"
#
# runs in the foreground (stopped by PID) and prints P11_KIT_SERVER_ADDRESS;
# a second process with `pkcs11-tool --module p11-kit-client.so` and that
# address sees exactly the exported token (not the card's other slots), lists
# the public objects, logs in, lists the private keys, signs with ECDSA,
# RSA PKCS#1 v1.5 and RSA-PSS, and openssl verifies every signature with the
# public key and certificate read through the same socket. A wrong PIN is
# refused there as it is locally. Another user cannot connect to the socket,
# and after the server stops the client finds no token.
#
# p11-kit's RPC carries only the mechanisms whose parameters it knows (0.24:
# no ECDSA-SHA256, no SHA256-RSA-PKCS-PSS); the client offers no others, so
# the signatures use ECDSA over a hash, SHA256-RSA-PKCS and RSA-PKCS-PSS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
it_setup p11kit-server
T=$IT_TMP
CLIENT_MODULE=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || true)/p11-kit-client.so
SOCKET="$XDG_RUNTIME_DIR/sks-token.sock"

it_mark
check "p11-kit-client.so is installed ($CLIENT_MODULE)" test -f "$CLIENT_MODULE"
it_token_with_keys
check "the card also has a free slot (not exported)" "${P11[@]}" -L
check_out "the module lists the free slot" 'token state: +uninitialized'

# ---- the server ----------------------------------------------------------------------
p11-kit server -f -s --provider "$SKS_IT_MODULE" -n "$SOCKET" "pkcs11:token=$IT_TOKEN" \
    </dev/null >"$T/server.out" 2>"$T/server.err" &
SERVER_PID=$!
it_bg "$SERVER_PID"
for _ in $(seq 1 100); do
    grep -q '^P11_KIT_SERVER_PID=' "$T/server.out" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
ADDRESS=$(sed -n 's/^P11_KIT_SERVER_ADDRESS=\([^;]*\);.*/\1/p' "$T/server.out")
PRINTED_PID=$(sed -n 's/^P11_KIT_SERVER_PID=\([0-9]*\);.*/\1/p' "$T/server.out")
check_eq "p11-kit server prints the socket's address" "unix:path=$SOCKET" "$ADDRESS"
check_eq "p11-kit server -f prints its own PID" "$SERVER_PID" "$PRINTED_PID"
check "the socket exists" test -S "$SOCKET"
it_gate "p11-kit server exporting the token"

C=(env P11_KIT_SERVER_ADDRESS="$ADDRESS" pkcs11-tool --module "$CLIENT_MODULE")
CT=("${C[@]}" --token-label "$IT_TOKEN")
CU=("${CT[@]}" --login --pin "$IT_PIN")

# ---- the client ------------------------------------------------------------------------
check "client: -L" "${C[@]}" -L
check_eq "client: exactly one slot, the exported token's" 1 "$(it_count '^Slot [0-9]+ ')"
check_out "client: the token keeps its label" "token label +: $IT_TOKEN\$"
check_out "client: and its manufacturer" 'token manufacturer : SKS$'
check_out "client: and says that it needs a login" 'token flags +: .*login required'
check_no_out "client: the free slot is not exported" 'uninitialized'

check "client: -O without login" "${CT[@]}" -O
check_out "client: the EC public key is listed" '^Public Key Object; EC'
check_out "client: the RSA public key is listed" '^Public Key Object; RSA 2048 bits'
check_out "client: the certificates are listed" '^Certificate Object; type = X.509 cert'
check_no_out "client: no private key before login" '^Private Key Object'

check "client: --login -O" "${CU[@]}" -O
check_eq "client: two private keys after login" 2 "$(it_count '^Private Key Object')"

check "client: read the EC public key" "${CT[@]}" --read-object --type pubkey --id 02 -o "$T/ec-remote.der"
check "client: the EC public key parses" openssl pkey -pubin -inform DER -in "$T/ec-remote.der" \
    -out "$T/ec-remote.pem"
check_cmp "client: it is the token's EC key" "$T/ec256.pem" "$T/ec-remote.pem"
check "client: read the RSA key's certificate" "${CT[@]}" --read-object --type cert --id 01 \
    -o "$T/rsa-cert.der"
check "client: the certificate parses" sh -c "openssl x509 -inform DER -in '$T/rsa-cert.der' \
    -noout -pubkey >'$T/rsa-cert.pub'"
check_cmp "client: the certificate carries the token's RSA key" "$T/rsa.pem" "$T/rsa-cert.pub"

head -c 3000 /dev/urandom >"$T/data"
openssl dgst -sha256 -binary "$T/data" >"$T/data.sha256"
check "client: sign with ECDSA (the SHA-256 hash)" "${CU[@]}" --sign -m ECDSA --id 02 \
    -i "$T/data.sha256" -o "$T/sig.ec.rs"
if it_ok && it_rs_to_der "$T/sig.ec.rs" "$T/sig.ec.der"; then
    check "openssl verifies the ECDSA signature made through the socket" openssl dgst -sha256 \
        -verify "$T/ec256.pem" -signature "$T/sig.ec.der" "$T/data"
fi
check "client: sign with SHA256-RSA-PKCS" "${CU[@]}" --sign -m SHA256-RSA-PKCS --id 01 \
    -i "$T/data" -o "$T/sig.rsa"
check "openssl verifies the PKCS#1 v1.5 signature against the certificate's key" openssl dgst \
    -sha256 -verify "$T/rsa-cert.pub" -signature "$T/sig.rsa" "$T/data"
check "client: sign with RSA-PKCS-PSS (SHA-256, MGF1-SHA256, salt 32)" "${CU[@]}" --sign \
    -m RSA-PKCS-PSS --hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len 32 --id 01 \
    -i "$T/data.sha256" -o "$T/sig.pss"
check "openssl verifies the RSA-PSS signature" openssl pkeyutl -verify -pubin \
    -inkey "$T/rsa.pem" -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss \
    -pkeyopt rsa_pss_saltlen:32 -in "$T/data.sha256" -sigfile "$T/sig.pss"
check_fail "client: a wrong PIN is refused" 'CKR_PIN_INCORRECT' "${CT[@]}" --login --pin 999999 \
    --sign -m ECDSA --id 02 -i "$T/data.sha256" -o "$T/sig.bad"
check "client: the right PIN still signs" "${CU[@]}" --sign -m ECDSA --id 02 \
    -i "$T/data.sha256" -o "$T/sig.ec2.rs"

# Only the user who runs the server may connect (the socket is the token).
if [ "$(id -u)" -eq 0 ]; then
    check_fail "another user (nobody) cannot use the socket" 'denied|No slots|refused|failed|error' \
        setpriv --reuid=nobody --regid=nogroup --clear-groups "${C[@]}" -L
fi

# ---- stop ------------------------------------------------------------------------------
it_stop "$SERVER_PID"
check "p11-kit server stopped (by PID)" sh -c "! kill -0 $SERVER_PID 2>/dev/null"
check_fail "client: no token once the server is gone" 'No slot|not found|error|failed' \
    "${CT[@]}" -O

it_finish
