#!/bin/bash
# t-p11kit-proxy.sh - the module registered with p11-kit and reached through
# p11-kit-proxy.so, as applications find it when nobody names a module: the
# installed sks.module copied into the user's p11-kit configuration
# ($XDG_CONFIG_HOME/pkcs11/modules, never the system's), next to the modules
# the system registers (OpenSC's opensc-pkcs11, p11-kit-trust, ...). The card
# sits in a PC/SC reader (isolated pcscd + sks-card, pcscd-env.sh), which
# OpenSC probes as well.
#
# Checks: p11-kit list-modules loads sks and the system's modules, and shows
# the token once; p11tool finds it by pkcs11: URI, lists its objects after
# login; openssl with libengine-pkcs11 and no MODULE_PATH (so p11-kit-proxy)
# signs with the EC and RSA keys by URI, and openssl verifies the signatures;
# gnutls-cli authenticates to s_server with key and certificate named by
# pkcs11: URIs; ssh-keygen -D lists the token's keys in OpenSSH format, the
# same keys (through the proxy and with the module itself), and ssh-agent
# holding them signs with `ssh-keygen -Y sign`, verified with `-Y verify`.
# OpenSC sees the reader and the card but offers no token of it, its probing
# (opensc-tool --name, pkcs11-tool with its module) leaves our token
# working: it still signs through the proxy afterwards.
#
# p11-kit reads no user configuration in a program running as root, so the
# p11-kit parts run as nobody (the test's files handed over). Needs root for
# the isolated pcscd: without it the test fails, unless SKS_ALLOW_NO_PCSCD=1
# lets it skip.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pcscd-env.sh
. "$here/pcscd-env.sh"
it_setup p11kit-proxy
T=$IT_TMP
SKS_CARD=${SKS_IT_PREFIX:?run through run-all.sh}/sbin/sks-card
CARD="$T/card"
SKS_CARD_LOG="$T/sks-card.log"
READER=$(vpcd_reader 35963)
PROXY=$(pkg-config --variable=proxy_module p11-kit-1 2>/dev/null || true)
[ -n "$PROXY" ] || PROXY=/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so
OPENSC_MODULE=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || true)/opensc-pkcs11.so
TOKEN_URI="pkcs11:token=$IT_TOKEN"

# The last output has a line starting with the OpenSSH public key in FILE
# (type and base64, compared as plain strings).
check_ssh_key() { # DESC FILE
    local key
    key=$(cat "$2" 2>/dev/null)
    if [ -n "$key" ] && awk -v k="$key" 'index($0, k) == 1 { f = 1 } END { exit !f }' "$IT_OUT"; then
        pass "$1"
    else
        fail "$1" "no line starting with '${key:0:40}...'"
        it_show_output
    fi
}

# ---- set-up: the card in a reader ------------------------------------------------------
it_mark
check "sks-card is installed in sbin" test -x "$SKS_CARD"
check "p11-kit-proxy.so is installed ($PROXY)" test -f "$PROXY"
check "OpenSC's PKCS#11 module is installed ($OPENSC_MODULE)" test -f "$OPENSC_MODULE"
it_gate "sks-card, p11-kit-proxy and OpenSC"
pcscd_start_or_end "the test"
it_mark
sks_card_start_checked "$CARD" "sks-card serves a fresh card in '$READER'"

# Only the card in the reader (no embedded card): the tokens p11-kit shows
# are the reader's. The local issuer must trust the card's development CA.
it_write_conf "$SKS_PKCS11_CONF" "$IT_STATE" "transport = pcsc" \
    "manufacturer_ca = $CARD/manufacturer/ca-cert.pem"
P11=("${IN_PCSCD[@]}" pkcs11-tool --module "$SKS_IT_MODULE")
it_token_with_keys

# A client certificate for the EC key, stored on the token (for gnutls-cli).
it_make_ca "$T/ca"
it_engine_conf "$T/engine-direct.cnf"
check "a request for the EC key (engine with the module named)" "${IN_PCSCD[@]}" env \
    OPENSSL_CONF="$T/engine-direct.cnf" openssl req -new -engine pkcs11 -keyform engine \
    -key "$TOKEN_URI;object=ec256;type=private;pin-value=$IT_PIN" -subj "/CN=sks-client-proxy" \
    -out "$T/client.csr"
it_ca_sign_client "$T/ca" "$T/client.csr" "$T/client.pem"
openssl x509 -in "$T/client.pem" -outform DER -out "$T/client.der" 2>/dev/null || true
check "store the client certificate on the token" "${P11[@]}" --token-label "$IT_TOKEN" --login \
    --pin "$IT_PIN" --write-object "$T/client.der" --type cert --id 02 --label client-ec

# ---- the user's p11-kit registration ---------------------------------------------------
reg="$SKS_IT_P11KIT_DIR/sks.module"
check "the installed p11-kit registration exists" test -f "$reg"
mkdir -p "$XDG_CONFIG_HOME/pkcs11/modules"
# The installed file may name the module relative to p11-kit's module
# directory; the user's copy names the module under test by its full path.
sed "s|^module:.*|module: $SKS_IT_MODULE|" "$reg" >"$XDG_CONFIG_HOME/pkcs11/modules/sks.module" \
    2>/dev/null || true
AS=()
if [ "$(id -u)" -eq 0 ]; then
    check "hand the test's files to nobody for the p11-kit part" chown -R nobody:nogroup "$T"
    AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
it_gate "a token with keys and a client certificate, and the user's p11-kit registration"
# Everything below runs as that user, a client of the isolated pcscd.
U=("${IN_PCSCD[@]}" "${AS[@]}")

check "p11-kit list-modules" "${U[@]}" p11-kit list-modules
check_out "p11-kit loads the sks module from the user's registration" "^sks: $SKS_IT_MODULE"
check_out "p11-kit loads the system's OpenSC module too" '^opensc-pkcs11: '
check_out "p11-kit loads p11-kit-trust too" '^p11-kit-trust: '
check_eq "the token is listed once" 1 "$(it_count "^ +token: $IT_TOKEN\$")"
check_out "its manufacturer is SKS" 'manufacturer: SKS'

check "p11tool --list-tokens (p11-kit-proxy)" "${U[@]}" p11tool --list-tokens
check_eq "p11tool shows the token once" 1 "$(it_count "URL: pkcs11:.*token=$IT_TOKEN(;|\$)")"
check_out "p11tool shows the system trust token as well" 'URL: pkcs11:.*token=System%20Trust'
sks_tokens=$(it_count '^[[:space:]]+Manufacturer: SKS$')
check "pkcs11-tool -L with the module itself" "${P11[@]}" -L
check_eq "p11tool shows as many SKS tokens as the module has slots (no second view of the card)" \
    "$(it_count '^Slot [0-9]+ ')" "$sks_tokens"
export GNUTLS_PIN=$IT_PIN
check "p11tool --login --list-all $TOKEN_URI" "${U[@]}" p11tool --login --list-all "$TOKEN_URI"
check_out "the EC private key is found by URI" "object=ec256;type=private"
check_out "the RSA private key is found by URI" "object=rsa2048;type=private"
check_out "the stored client certificate is listed" "object=client-ec;type=cert"
check "p11tool --test-sign with the EC key" "${U[@]}" p11tool --login --test-sign \
    "$TOKEN_URI;object=ec256;type=private"
check_out "p11tool verified the EC signature" 'Verifying against public key in the token\.\.\. ok'

# ---- openssl: libengine-pkcs11 without a module path -----------------------------------
it_engine_conf "$T/engine-proxy.cnf" proxy
chown nobody:nogroup "$T/engine-proxy.cnf" 2>/dev/null || true
E=("${U[@]}" env OPENSSL_CONF="$T/engine-proxy.cnf" openssl)
head -c 4000 /dev/urandom >"$T/data"
openssl dgst -sha256 -binary "$T/data" >"$T/data.sha256"
chown nobody:nogroup "$T/data" "$T/data.sha256" 2>/dev/null || true
check "the engine has no MODULE_PATH (p11-kit-proxy is its default)" sh -c \
    "! grep -q MODULE_PATH '$T/engine-proxy.cnf'"
check "pkeyutl -sign with the EC key through p11-kit-proxy" "${E[@]}" pkeyutl -engine pkcs11 \
    -keyform engine -inkey "$TOKEN_URI;object=ec256;type=private;pin-value=$IT_PIN" -sign \
    -in "$T/data.sha256" -out "$T/sig.ec"
check "openssl verifies the ECDSA signature" openssl pkeyutl -verify -pubin -inkey "$T/ec256.pem" \
    -in "$T/data.sha256" -sigfile "$T/sig.ec"
check "dgst -sha256 -sign with the RSA key (id= URI) through p11-kit-proxy" "${E[@]}" dgst \
    -sha256 -engine pkcs11 -keyform engine \
    -sign "$TOKEN_URI;id=%01;type=private;pin-value=$IT_PIN" -out "$T/sig.rsa" "$T/data"
check "openssl verifies the RSA signature" openssl dgst -sha256 -verify "$T/rsa.pem" \
    -signature "$T/sig.rsa" "$T/data"

# ---- gnutls-cli: TLS client authentication by URI ----------------------------------------
printf 'GET / HTTP/1.0\r\n\r\n' >"$T/http-get"
if it_start_server "$T/ca"; then
    IT_STDIN="$T/http-get" check "gnutls-cli through p11-kit-proxy with key and certificate URIs" \
        "${U[@]}" gnutls-cli --x509cafile "$T/ca/ca.pem" \
        --x509keyfile "$TOKEN_URI;object=ec256;type=private" \
        --x509certfile "$TOKEN_URI;object=client-ec;type=cert" -p "$IT_PORT" 127.0.0.1
    check_out "the handshake completed" 'Handshake was completed'
    it_wait_server
    check_client_verified "the server verified the token's client certificate" sks-client-proxy
else
    fail "gnutls-cli: start openssl s_server" "see above"
fi

# ---- ssh: ssh-keygen -D and ssh-agent ---------------------------------------------------
for k in ec256 rsa; do
    ssh-keygen -i -m PKCS8 -f "$T/$k.pem" 2>/dev/null | awk '{ print $1, $2 }' >"$T/$k.ssh" || true
done
check "ssh-keygen -D p11-kit-proxy.so" "${U[@]}" ssh-keygen -D "$PROXY"
check_ssh_key "ssh-keygen -D lists the EC key (the same as pkcs11-tool's)" "$T/ec256.ssh"
check_ssh_key "ssh-keygen -D lists the RSA key (the same as pkcs11-tool's)" "$T/rsa.ssh"
check "ssh-keygen -D with the module itself" "${IN_PCSCD[@]}" ssh-keygen -D "$SKS_IT_MODULE"
check_ssh_key "the module lists the EC key" "$T/ec256.ssh"

# ssh-agent (stopped by PID) loads the token's keys with the PIN from an
# askpass script; ssh-keygen -Y sign then signs through the agent, with the key
# on the card.
printf '#!/bin/sh\necho %s\n' "$IT_PIN" >"$T/askpass"
chmod 755 "$T/askpass"
chown nobody:nogroup "$T/askpass" 2>/dev/null || true
AGENT_SOCK="$T/agent.sock"
"${U[@]}" ssh-agent -d -a "$AGENT_SOCK" \
    -P "$(readlink -f "$PROXY"),$(readlink -f "$SKS_IT_MODULE")" >"$T/agent.log" 2>&1 </dev/null &
AGENT_PID=$!
it_bg "$AGENT_PID"
for _ in $(seq 1 50); do [ -S "$AGENT_SOCK" ] && break; sleep 0.1; done
SSH_ENV=(env SSH_AUTH_SOCK="$AGENT_SOCK" SSH_ASKPASS="$T/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0)
check "ssh-add -s p11-kit-proxy.so (PIN from askpass)" "${U[@]}" "${SSH_ENV[@]}" ssh-add -s "$PROXY"
check "ssh-add -L" "${U[@]}" "${SSH_ENV[@]}" ssh-add -L
check_ssh_key "the agent holds the EC key of the token" "$T/ec256.ssh"
cp "$T/ec256.ssh" "$T/ec256.pub" 2>/dev/null || true
chown nobody:nogroup "$T/ec256.pub" 2>/dev/null || true
check "ssh-keygen -Y sign with the token's EC key through the agent" "${U[@]}" "${SSH_ENV[@]}" \
    ssh-keygen -Y sign -f "$T/ec256.pub" -n sks-test "$T/data"
printf 'sks-it %s\n' "$(cat "$T/ec256.ssh")" >"$T/allowed"
check "ssh-keygen -Y verify: the signature verifies" sh -c "ssh-keygen -Y verify -f '$T/allowed' \
    -I sks-it -n sks-test -s '$T/data.sig' <'$T/data'"
check_out "ssh-keygen reports a good signature by the token key" '^Good "sks-test" signature for sks-it'
it_stop "$AGENT_PID"

# ---- OpenSC probing the same reader ------------------------------------------------------
check "opensc-tool -l: OpenSC sees the reader" "${IN_PCSCD[@]}" opensc-tool -l
check_out "the reader holds a card" "^[0-9]+ +Yes .*$READER\$"
# OpenSC's card drivers probe the card (SELECTs of their applets); the SKS
# card is none of theirs, so this fails, after the probing.
it_run "${IN_PCSCD[@]}" opensc-tool -r "$READER" --name || true
check_out "opensc-tool --name probed the card" 'card|Card'
check "pkcs11-tool -L with OpenSC's module" "${IN_PCSCD[@]}" pkcs11-tool --module "$OPENSC_MODULE" -L
check_out "OpenSC lists the reader's slot" "$READER"
check_no_out "OpenSC offers no token of the SKS card" "token label +: $IT_TOKEN"
check "after OpenSC's probing our token still signs through p11-kit-proxy" "${E[@]}" pkeyutl \
    -engine pkcs11 -keyform engine \
    -inkey "$TOKEN_URI;object=ec256;type=private;pin-value=$IT_PIN" -sign -in "$T/data.sha256" \
    -out "$T/sig.ec2"
check "openssl verifies that signature" openssl pkeyutl -verify -pubin -inkey "$T/ec256.pem" \
    -in "$T/data.sha256" -sigfile "$T/sig.ec2"
check "p11-kit list-modules once more: still one token" "${U[@]}" p11-kit list-modules
check_eq "the token is listed once" 1 "$(it_count "^ +token: $IT_TOKEN\$")"

it_finish
