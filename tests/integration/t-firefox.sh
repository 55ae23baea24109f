#!/bin/bash
# t-firefox.sh - TLS client authentication in a real browser: headless
# Firefox ESR with the module in a fresh profile's NSS database, a test CA
# trusted there, and `security.default_personal_cert` = "Select
# Automatically", opens https://127.0.0.1:PORT/ served by `openssl s_server
# -www -Verify 1` and takes a screenshot. The server must receive and verify
# the certificate of a card key, and the screenshot must be s_server's status
# page showing a client certificate (taller than the same page of a server
# that asks for none, taken once for comparison). Runs with an RSA-2048 and a
# P-256 card key, each over TLS 1.3 and TLS 1.2 (RSA over TLS 1.2 with
# PKCS#1 v1.5 only, over TLS 1.3 RSA-PSS is the only choice).
#
# Headless Firefox cannot answer a PIN prompt, so the keys have no PIN: they
# live on the "SKS (no PIN)" token, which does not report CKF_LOGIN_REQUIRED.
# nopin-key.c puts them on the card (the local issuer with PIN policy 0),
# then each gets a certificate from a test CA, stored on the card under the
# key's CKA_ID. A PIN token with a key of its own stays on the card: while
# choosing a certificate Firefox logs in to every slot NSS does not know as
# "friendly" (certificates readable without login), which in headless mode
# waits for a PIN forever. `modutil -add -mechanisms FRIENDLY` marks the
# module's slots as friendly (NSS keeps the flag per slot ID, for the slots
# the module lists at that moment). Firefox's speculative connections are
# turned off: it cancels those that meet a certificate request, which the
# server logs as a handshake without a client certificate.
#
# Then the same NSS commands on Chromium's database (~/.pki/nssdb), and one
# more browser run with the card in a reader: an isolated pcscd with sks-card
# (pcscd-env.sh, needs root unless SKS_ALLOW_NO_PCSCD=1 lets that part skip)
# and the module with `transport = pcsc`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
it_setup firefox
T=$IT_TMP
NOPIN_KEY=${SKS_IT_NOPIN_KEY:?SKS_IT_NOPIN_KEY must name the nopin-key driver (run through run-all.sh)}
FF_TIMEOUT=${SKS_IT_FIREFOX_TIMEOUT:-60}
NOPIN_TOKEN="SKS (no PIN)"
NOPIN_RE='SKS \(no PIN\)' # the same as a regular expression
NOPIN_URI="pkcs11:token=SKS%20%28no%20PIN%29"
PROFILE="$T/profile"
FF_RUN=() # a prefix for firefox-esr (nsenter into the isolated pcscd's namespace)
# Log every PKCS#11 call: the last check reads which ones Firefox made.
echo "log_level = debug" >>"$SKS_PKCS11_CONF"

it_mark
check "firefox-esr --version (Debian package firefox-esr, scripts/install-deps.sh)" \
    firefox-esr --version
check_out "it is Firefox ESR" 'Mozilla Firefox [0-9.]+esr'

# ---- the card: a PIN token, and two keys without PIN with certificates ----------
it_make_token "$IT_TOKEN"
it_keygen EC:prime256v1 01 pin-ec
check "nopin-key: an RSA-2048 key without PIN (id 0a)" \
    "$NOPIN_KEY" "$IT_STATE/card" "$IT_STATE/issuer" rsa2048 0a ff-rsa
check "nopin-key: a P-256 key without PIN (id 0b)" \
    "$NOPIN_KEY" "$IT_STATE/card" "$IT_STATE/issuer" ec256 0b ff-ec
check "-L with the keys without PIN" "${P11[@]}" -L
check_out "the module lists the no-PIN token" "token label +: $NOPIN_RE\$"
flags=$(awk -v t="$NOPIN_TOKEN" 'index($0, "token label        : " t) { f = 1 } f && /token flags/ { print; exit }' "$IT_OUT")
case $flags in
*"login required"*) fail "the no-PIN token does not need a login" "$flags" ;;
*"token initialized"*) pass "the no-PIN token does not need a login ($flags)" ;;
*) fail "the no-PIN token does not need a login" "no flags line: $flags" ;;
esac
NP=("${P11[@]}" --token-label "$NOPIN_TOKEN")

# Two CAs: the test CA for the server and the RSA client certificate, and one
# of another name for the EC client certificate, so that the CA list in the
# server's certificate request decides which card key Firefox picks (Firefox
# matches issuer names, so the two must differ).
it_make_ca "$T/ca"
mkdir -p "$T/ca-ec"
check "a second CA for the EC client certificate" openssl req -x509 -newkey ec \
    -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca-ec/ca.key" -out "$T/ca-ec/ca.pem" \
    -days 2 -subj "/CN=SKS integration test CA for EC clients" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
it_engine_conf "$T/engine.cnf"
for kind in rsa ec; do
    if [ $kind = rsa ]; then ca="$T/ca" id=0a; else ca="$T/ca-ec" id=0b; fi
    check "a request for the $kind key without PIN (engine, $NOPIN_URI, no PIN)" \
        env OPENSSL_CONF="$T/engine.cnf" openssl req -new -engine pkcs11 -keyform engine \
        -key "$NOPIN_URI;object=ff-$kind;type=private" -subj "/CN=sks-firefox-$kind" \
        -out "$T/$kind.csr"
    check "the $kind request's signature verifies" openssl req -verify -noout -in "$T/$kind.csr"
    it_ca_sign_client "$ca" "$T/$kind.csr" "$T/$kind.pem"
    openssl x509 -in "$T/$kind.pem" -outform DER -out "$T/$kind.der" 2>/dev/null || true
    check "store the $kind client certificate on the no-PIN token under the key's ID $id" \
        "${NP[@]}" --write-object "$T/$kind.der" --type cert --id "$id" --label "ff-$kind-client"
done
it_gate "keys without PIN with client certificates from the test CAs"

# ---- the Firefox profile ----------------------------------------------------------
mkdir -p "$PROFILE"
DB="sql:$PROFILE"
check "certutil -N: the profile's NSS database" certutil -N -d "$DB" --empty-password
check "modutil -add sks -mechanisms FRIENDLY" modutil -dbdir "$DB" -add sks -libfile "$SKS_IT_MODULE" \
    -mechanisms FRIENDLY -force
check "modutil -list sks" modutil -dbdir "$DB" -list sks
check_out "NSS sees the no-PIN token" "Token Name: $NOPIN_RE"
check_out "NSS sees the PIN token" "Token Name: $IT_TOKEN"
check "the module's slots are marked friendly in pkcs11.txt" grep -q 'slotFlags=PublicCerts' \
    "$PROFILE/pkcs11.txt"
check "certutil -A: trust the test CA for TLS servers" certutil -A -d "$DB" \
    -n "SKS test CA" -t "CT,," -i "$T/ca/ca.pem"
check "certutil -L -h all: NSS finds the card's certificates" certutil -L -d "$DB" -h all
check_out "the RSA client certificate is listed" "$NOPIN_RE:ff-rsa-client"
check_out "the EC client certificate is listed" "$NOPIN_RE:ff-ec-client"
# Offline and quiet: no first-run pages, telemetry, updates, remote settings,
# safe browsing, captive portal or connectivity checks, no speculative
# connections; choose the client certificate without asking.
cat >"$PROFILE/user.js" <<'EOF'
user_pref("security.default_personal_cert", "Select Automatically");
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("startup.homepage_welcome_url", "");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.unified", false);
user_pref("app.update.enabled", false);
user_pref("app.update.auto", false);
user_pref("app.normandy.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("services.settings.server", "http://127.0.0.1:9/");
user_pref("security.remote_settings.crlite_filters.enabled", false);
user_pref("security.remote_settings.intermediates.enabled", false);
user_pref("security.OCSP.enabled", 0);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("browser.region.network.url", "");
user_pref("geo.provider.network.url", "");
user_pref("browser.search.update", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.prefetch-next", false);
user_pref("network.http.speculative-parallel-limit", 0);
user_pref("network.predictor.enabled", false);
user_pref("browser.urlbar.speculativeConnect.enabled", false);
user_pref("browser.places.speculativeConnect.enabled", false);
EOF

# ---- the server and the browser ------------------------------------------------------

# Headless Firefox takes a screenshot of the page at $IT_PORT into PNG; it
# runs in the background, bounded by $FF_TIMEOUT and stopped by PID. A check.
ff_screenshot() { # DESC PNG
    local desc=$1 png=$2 pid rc=0 waited=0
    IT_SEQ=$((IT_SEQ + 1))
    IT_OUT="$IT_TMP/out/$IT_SEQ.log"
    echo "firefox-esr --headless --screenshot $png https://127.0.0.1:$IT_PORT/" >"$IT_OUT.cmd"
    rm -f "$png"
    "${FF_RUN[@]}" firefox-esr --headless --no-remote --profile "$PROFILE" --screenshot "$png" \
        "https://127.0.0.1:$IT_PORT/" </dev/null >"$IT_OUT" 2>&1 &
    pid=$!
    it_bg "$pid"
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((FF_TIMEOUT * 10)) ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        it_stop "$pid"
        fail "$desc" "firefox (PID $pid) did not finish within ${FF_TIMEOUT}s: stopped"
        it_show_output
        return 0
    fi
    wait "$pid" || rc=$?
    it_stop "$pid"
    if [ "$rc" -ne 0 ]; then
        fail "$desc" "firefox exited with status $rc"
        it_show_output
        return 0
    fi
    pass "$desc"
}

png_height() { # PNG: the height from the IHDR chunk (bytes 20..23), or 0
    local b
    if [ ! -s "$1" ] || [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ]; then
        echo 0
        return 0
    fi
    read -r -a b < <(od -An -tu1 -j20 -N4 "$1")
    echo $(((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]))
}

# Only Firefox's own calls from here on in the module log.
: >"$IT_LOG"

# First the status page of a server that asks for no client certificate: the
# page with one has a "Client certificate" section (the certificate as text
# and PEM) and so is taller. (A failed handshake is no reference: Firefox
# never finishes the screenshot of its error page.)
PLAIN_HEIGHT=0
if it_serve "$T/ca" none; then
    ff_screenshot "status page without client authentication" "$T/plain.png"
    it_server_log
    check_no_out "the server asked for no client certificate" '^depth=|error'
    PLAIN_HEIGHT=$(png_height "$T/plain.png")
    if [ "$PLAIN_HEIGHT" -gt 0 ]; then
        pass "the screenshot is a PNG (height $PLAIN_HEIGHT)"
    else
        fail "the screenshot is a PNG" "$(ls -l "$T/plain.png" 2>&1)"
    fi
else
    fail "status page without client authentication: start openssl s_server" "see above"
fi

# One handshake: the server must verify the certificate of CN, the page
# must be the status page.
ff_handshake() { # DESC CAFILE CN [s_server options...]
    local desc=$1 cafile=$2 cn=$3 png h
    shift 3
    png="$T/shot-$IT_SEQ.png"
    if ! it_serve "$T/ca" "$cafile" "$@"; then
        fail "$desc: start openssl s_server" "see above"
        return 0
    fi
    ff_screenshot "$desc: firefox --headless --screenshot of https://127.0.0.1:$IT_PORT/" "$png"
    it_server_log
    check_client_verified "$desc: the server received and verified the card key's certificate" "$cn"
    check_no_out "$desc: no handshake without a client certificate, no error" \
        'peer did not return a certificate|alert|error'
    h=$(png_height "$png")
    if [ "$PLAIN_HEIGHT" -gt 0 ] && [ "$h" -gt $((PLAIN_HEIGHT + 500)) ]; then
        pass "$desc: the screenshot is the status page with the client certificate ($h pixels high, without $PLAIN_HEIGHT)"
    else
        fail "$desc: the screenshot is the status page with the client certificate" \
            "height $h, the page without client authentication $PLAIN_HEIGHT"
    fi
}

ff_handshake "RSA key, TLS 1.3 (RSA-PSS)" "$T/ca/ca.pem" sks-firefox-rsa -tls1_3
ff_handshake "RSA key, TLS 1.2 (PKCS#1 v1.5)" "$T/ca/ca.pem" sks-firefox-rsa -tls1_2 \
    -client_sigalgs RSA+SHA256:RSA+SHA384
ff_handshake "P-256 key, TLS 1.3" "$T/ca-ec/ca.pem" sks-firefox-ec -tls1_3
ff_handshake "P-256 key, TLS 1.2" "$T/ca-ec/ca.pem" sks-firefox-ec -tls1_2

check "the PIN token was never logged in to (no C_Login in the module log)" \
    sh -c "! grep -q 'C_Login' '$IT_LOG'"

# ---- Chromium's database: the same NSS commands on ~/.pki/nssdb ----------------------
mkdir -p "$HOME/.pki/nssdb"
check "Chromium's NSS database (~/.pki/nssdb): certutil -N" certutil -N -d "sql:$HOME/.pki/nssdb" \
    --empty-password
check "modutil -add sks to ~/.pki/nssdb" modutil -dbdir "sql:$HOME/.pki/nssdb" -add sks \
    -libfile "$SKS_IT_MODULE" -mechanisms FRIENDLY -force
check "certutil -L -h all on ~/.pki/nssdb" certutil -L -d "sql:$HOME/.pki/nssdb" -h all
check_out "the card's client certificate is there" "$NOPIN_RE:ff-rsa-client"

# ---- the card in a reader: pcscd, sks-card ---------------------------------------------
# The same browser run with a card served by sks-card through an isolated
# pcscd (pcscd-env.sh) and the module with `transport = pcsc`: Firefox sees a
# removable slot and watches it for events.
# shellcheck source-path=SCRIPTDIR source=pcscd-env.sh
. "$here/pcscd-env.sh"
SKS_CARD=$SKS_IT_PREFIX/sbin/sks-card
SKS_CARD_LOG="$T/sks-card.log"
RCARD="$T/reader-card"
pcscd_start_or_end "the run through pcscd"
it_mark
check "nopin-key: an RSA-2048 key without PIN on the reader's card (id 0c)" \
    "$NOPIN_KEY" "$RCARD" "$T/reader-issuer" rsa2048 0c ff-reader
sks_card_start_checked "$RCARD" "sks-card serves that card" \
    "the card with a key without PIN in the reader"
it_write_conf "$T/pcsc.conf" "$T/pcsc-state" "transport = pcsc" \
    "manufacturer_ca = $RCARD/manufacturer/ca-cert.pem" "log_level = debug"
export SKS_PKCS11_CONF="$T/pcsc.conf"
check "pkcs11-tool -L through pcscd" "${IN_PCSCD[@]}" "${P11[@]}" -L
check_out "the reader's card has the no-PIN token" "$(vpcd_reader 35963): $NOPIN_RE"
check "a request for the reader card's key" "${IN_PCSCD[@]}" env OPENSSL_CONF="$T/engine.cnf" \
    openssl req -new -engine pkcs11 -keyform engine \
    -key "$NOPIN_URI;object=ff-reader;type=private" -subj "/CN=sks-firefox-reader" \
    -out "$T/reader.csr"
it_ca_sign_client "$T/ca" "$T/reader.csr" "$T/reader.pem"
openssl x509 -in "$T/reader.pem" -outform DER -out "$T/reader.der" 2>/dev/null || true
check "store its certificate on the reader's card" "${IN_PCSCD[@]}" "${NP[@]}" \
    --write-object "$T/reader.der" --type cert --id 0c --label ff-reader-client
: >"$IT_LOG"
FF_RUN=("${IN_PCSCD[@]}")
ff_handshake "card in a reader, RSA key, TLS 1.3" "$T/ca/ca.pem" sks-firefox-reader -tls1_3
check "Firefox used the card through pcscd (C_SignInit in the module log)" \
    grep -q 'C_SignInit' "$IT_LOG"

it_finish
