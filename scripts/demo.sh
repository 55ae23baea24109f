#!/bin/sh
# demo.sh - the README's first command: install what is needed, build, run
# the SKS sample session against a fresh card, then install the PKCS#11
# module into _build/prefix and use it with real tools on another fresh
# card in a temporary directory: pkcs11-tool creates a token and an EC and an
# RSA key pair on the card and signs; OpenSSL verifies the signatures.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" "$top/_build" --enable-werror
"$top/_build/sks-sample-session"

step() { printf '\n== %s\n' "$*"; }

prefix="$top/_build/prefix"
step "make install prefix=_build/prefix"
make -C "$top/_build" -s install prefix="$prefix" \
    p11kitmoduledir="$prefix/share/p11-kit/modules" >"$top/_build/install.log" 2>&1 ||
    { cat "$top/_build/install.log"; exit 1; }
module="$prefix/lib/pkcs11/sks-pkcs11.so"
echo "module: $module"

demo=$(mktemp -d "${TMPDIR:-/tmp}/sks-demo.XXXXXX")
issuer_pid=""
trap 'if [ -n "$issuer_pid" ]; then kill "$issuer_pid" 2>/dev/null || true; fi; rm -rf "$demo"' EXIT
# The module's configuration: an embedded card of its own in $demo.
export SKS_PKCS11_CONF="$demo/sks-pkcs11.conf"
printf 'state_dir = %s\n' "$demo/state" >"$SKS_PKCS11_CONF"
so_pin=87654321
pin=123456
# pkcs11-tool with the module, showing the lines of its output that match
# SHOW (an extended regular expression); stops the demo on failure.
p11() { # SHOW ARGS...
    show=$1
    shift
    rc=0
    pkcs11-tool --module "$module" "$@" >"$demo/out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$demo/out"
        echo "demo: pkcs11-tool failed (exit status $rc)" >&2
        exit 1
    fi
    grep -E "$show" "$demo/out" || true
}
all='.'

step "pkcs11-tool -L: a fresh embedded card offers one free slot"
p11 "$all" -L
step "pkcs11-tool --init-token: a new token 'demo' (its SO PIN is the PUK)"
p11 "$all" --init-token --label demo --so-pin "$so_pin"
step "pkcs11-tool --init-pin as SO: the user PIN"
p11 "$all" --token-label demo --login --login-type so --so-pin "$so_pin" --init-pin --pin "$pin"
step "pkcs11-tool --keypairgen: an EC P-256 key pair, generated on the card"
p11 'generated|Object' --token-label demo --login --pin "$pin" --keypairgen \
    --key-type EC:prime256v1 --id 01 --label demo-ec
step "pkcs11-tool --keypairgen: an RSA-2048 key pair, generated on the card"
p11 'generated|Object' --token-label demo --login --pin "$pin" --keypairgen \
    --key-type rsa:2048 --id 02 --label demo-rsa
step "pkcs11-tool -O: the token's objects (the keys, and certificates from the local issuer)"
p11 'Object|label|ID' --token-label demo --login --pin "$pin" -O

printf 'Signed by a key that never left the SKS card.\n' >"$demo/message"
step "sign a message with ECDSA-SHA256 on the card; OpenSSL verifies the signature"
p11 'algorithm' --token-label demo --login --pin "$pin" --sign -m ECDSA-SHA256 \
    --signature-format openssl --id 01 -i "$demo/message" -o "$demo/ec.sig"
p11 '^$' --token-label demo --read-object --type pubkey --id 01 -o "$demo/ec.der"
openssl dgst -sha256 -verify "$demo/ec.der" -keyform DER -signature "$demo/ec.sig" "$demo/message"
step "sign it with SHA256-RSA-PKCS-PSS on the card; OpenSSL verifies the signature"
p11 'algorithm' --token-label demo --login --pin "$pin" --sign -m SHA256-RSA-PKCS-PSS --id 02 \
    -i "$demo/message" -o "$demo/rsa.sig"
p11 '^$' --token-label demo --read-object --type pubkey --id 02 -o "$demo/rsa.der"
openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
    -verify "$demo/rsa.der" -keyform DER -signature "$demo/rsa.sig" "$demo/message"

# The example issuer runs the module in no-card mode in its own state directory.
issuer_demo() { # ARGS...: start sks-issuer-demo for one enrollment, wait for its port
    rm -f "$demo/issuer.port"
    env -u SKS_PKCS11_CONF "$prefix/bin/sks-issuer-demo" --module "$module" \
        --state-dir "$demo/issuer" --port 0 --port-file "$demo/issuer.port" --once "$@" &
    issuer_pid=$!
    i=0
    while [ ! -s "$demo/issuer.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    port=$(cat "$demo/issuer.port")
}

step "scenario (a): secure key injection (the minidriver seed's 31 steps, key archival)"
issuer_demo
"$prefix/bin/sks-enroll" --module "$module" --server "127.0.0.1:$port" --scenario inject \
    --token demo --pin "$pin" --subject "Demo Injected"
wait "$issuer_pid"
serial=$(ls "$demo/issuer/archive" | sed -n 's/\.der$//p' | head -n 1)
injected=$(printf 'K2-%s' "$serial" | od -An -tx1 | tr -d ' \n')
step "sign with the injected key on the card; OpenSSL verifies with the issued certificate"
p11 'algorithm' --token-label demo --login --pin "$pin" --sign -m SHA256-RSA-PKCS --id "$injected" \
    -i "$demo/message" -o "$demo/inj.sig"
openssl x509 -inform DER -in "$demo/issuer/archive/$serial.der" -pubkey -noout >"$demo/inj.pem"
openssl dgst -sha256 -verify "$demo/inj.pem" -signature "$demo/inj.sig" "$demo/message"

step "scenario (b): an SKS provisioning session (PUK, PIN policy, attested key pair, certificate)"
issuer_demo --manufacturer-ca "$demo/state/card/manufacturer/ca-cert.pem"
"$prefix/bin/sks-enroll" --module "$module" --server "127.0.0.1:$port" --scenario sks \
    --pin 5872 --subject "Demo SKS"
wait "$issuer_pid"
key=$(printf 'Key.1' | od -An -tx1 | tr -d ' \n')
step "sign with the card-generated key of the new token 'PIN'; OpenSSL verifies with its certificate"
p11 'algorithm' --token-label PIN --login --pin 5872 --sign -m ECDSA-SHA256 \
    --signature-format openssl --id "$key" -i "$demo/message" -o "$demo/sks.sig"
p11 '^$' --token-label PIN --read-object --type cert --id "$key" -o "$demo/sks.der"
openssl x509 -inform DER -in "$demo/sks.der" -pubkey -noout >"$demo/sks.pem"
openssl dgst -sha256 -verify "$demo/sks.pem" -signature "$demo/sks.sig" "$demo/message"

step "done: the module is $module"
echo "Use it with any PKCS#11 application; see README.md, 'Using the token'."
