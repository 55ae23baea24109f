# lib.sh - shared by the integration tests (sourced, not run): a private
# environment per test, one line per check, and the closing summary.
#
# Every test runs against the installed module named by SKS_IT_MODULE (set by
# run-all.sh) with a fresh HOME, XDG directories and its own SKS_PKCS11_CONF
# whose state_dir lies in a temporary directory, so no test ever sees another
# test's card or the user's own. Servers a test starts are registered with
# it_bg and stopped by PID when the test exits, whether it passed or not.
#
# Checks (each prints "ok   ..." or "FAIL ..."; commands run under a timeout
# with stdout and stderr captured in $IT_OUT, shown when the check fails, and
# stdin from $IT_STDIN or /dev/null):
#   check DESC CMD...              CMD exits 0
#   check_fail DESC REGEX CMD...   CMD exits non-zero and its output matches REGEX
#   check_out DESC REGEX           the output of the last command matches REGEX
#   check_no_out DESC REGEX        ... does not match REGEX
#   check_cmp DESC FILE1 FILE2     the files are identical
#   pass DESC / fail DESC [WHY]
# Checks never stop the test (it runs under set -e): they return 0 and leave
# IT_OK at 1 or 0, so `if it_ok; then ...` can skip what depends on a step.
# it_mark/it_gate stop a test whose set-up steps failed (see below).
# it_finish prints "N passed, M failed" and exits non-zero on any failure.

# shellcheck shell=bash

IT_PASSED=0
IT_FAILED=0
IT_PIDS=""
IT_TIMEOUT=${SKS_IT_TIMEOUT:-120}
IT_SEQ=0
IT_OK=1

: "${SKS_IT_MODULE:?SKS_IT_MODULE must name the installed sks-pkcs11.so (run through run-all.sh)}"

# The token every test creates on its fresh card.
IT_TOKEN=sks-it
IT_SO_PIN=87654321
IT_PIN=123456

P11=(pkcs11-tool --module "$SKS_IT_MODULE")

it_setup() { # NAME: fresh temporary environment for this test
    IT_NAME=$1
    IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sks-it-$IT_NAME.XXXXXX")
    export HOME="$IT_TMP/home"
    export XDG_DATA_HOME="$HOME/.local/share"
    export XDG_CONFIG_HOME="$HOME/.config"
    export XDG_CACHE_HOME="$HOME/.cache"
    export XDG_RUNTIME_DIR="$IT_TMP/run"
    mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR" "$IT_TMP/out"
    chmod 700 "$XDG_RUNTIME_DIR"
    unset OPENSSL_CONF OPENSSL_ENGINES GNUTLS_PIN GNUTLS_SO_PIN P11_KIT_SERVER_ADDRESS
    IT_STATE="$IT_TMP/state"
    IT_LOG="$IT_TMP/module.log"
    export SKS_PKCS11_CONF="$IT_TMP/sks-pkcs11.conf"
    it_write_conf "$SKS_PKCS11_CONF" "$IT_STATE"
    trap it_cleanup EXIT
    trap 'exit 130' INT TERM
    echo "# $IT_NAME: module $SKS_IT_MODULE, state in $IT_STATE"
}

it_write_conf() { # FILE STATE_DIR [extra lines...]
    local file=$1 state=$2
    shift 2
    {
        echo "# integration test configuration"
        echo "transport = embedded"
        echo "state_dir = $state"
        echo "log_level = warn"
        echo "log_file = $IT_LOG"
        for line in "$@"; do echo "$line"; done
    } >"$file"
}

it_bg() { # remember a background PID to stop at exit
    IT_PIDS="$IT_PIDS $1"
}

it_stop() { # PID: stop one background process now
    local pid=$1 p rest=""
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in $IT_PIDS; do [ "$p" = "$pid" ] || rest="$rest $p"; done
    IT_PIDS=$rest
}

it_cleanup() {
    local pid
    for pid in $IT_PIDS; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    IT_PIDS=""
    if [ -n "${IT_TMP:-}" ] && [ -d "$IT_TMP" ]; then
        if [ -n "${SKS_IT_KEEP:-}" ]; then
            echo "# $IT_NAME: kept $IT_TMP"
        else
            rm -rf "$IT_TMP"
        fi
    fi
}

it_ok() { # did the last check pass?
    [ "$IT_OK" -eq 1 ]
}

pass() {
    IT_OK=1
    IT_PASSED=$((IT_PASSED + 1))
    printf 'ok   %s: %s\n' "$IT_NAME" "$1"
}

fail() { # DESC [WHY]
    IT_OK=0
    IT_FAILED=$((IT_FAILED + 1))
    printf 'FAIL %s: %s\n' "$IT_NAME" "$1"
    [ $# -lt 2 ] || printf '     %s\n' "$2"
}

it_show_output() { # the tail of the last command's output, indented
    [ -s "$IT_OUT" ] || { echo "     (no output)"; return 0; }
    tail -n "${SKS_IT_SHOW_LINES:-25}" "$IT_OUT" | sed 's/^/     | /'
}

it_run() { # CMD...: run with a timeout, output to $IT_OUT; returns its status
    IT_SEQ=$((IT_SEQ + 1))
    IT_OUT="$IT_TMP/out/$IT_SEQ.log"
    printf '$ %s\n' "$*" >"$IT_OUT.cmd"
    local rc=0
    timeout -k 5 "$IT_TIMEOUT" "$@" >"$IT_OUT" 2>&1 <"${IT_STDIN:-/dev/null}" || rc=$?
    [ "$rc" -ne 124 ] || echo "(timed out after ${IT_TIMEOUT}s)" >>"$IT_OUT"
    return "$rc"
}

check() { # DESC CMD...
    local desc=$1 rc=0
    shift
    it_run "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "$desc"
        return 0
    fi
    fail "$desc" "exit status $rc from: $*"
    it_show_output
}

check_fail() { # DESC REGEX CMD...: must fail, with output matching REGEX
    local desc=$1 re=$2 rc=0
    shift 2
    it_run "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "$desc" "expected a failure, got exit status 0 from: $*"
        it_show_output
        return 0
    fi
    if ! grep -Eq -- "$re" "$IT_OUT"; then
        fail "$desc" "exit status $rc but the output does not match /$re/ from: $*"
        it_show_output
        return 0
    fi
    pass "$desc"
}

check_out() { # DESC REGEX: the last command's output matches
    if grep -Eq -- "$2" "$IT_OUT"; then
        pass "$1"
        return 0
    fi
    fail "$1" "output does not match /$2/ ($(cat "$IT_OUT.cmd"))"
    it_show_output
}

check_no_out() { # DESC REGEX: the last command's output does not match
    if ! grep -Eq -- "$2" "$IT_OUT"; then
        pass "$1"
        return 0
    fi
    fail "$1" "output unexpectedly matches /$2/ ($(cat "$IT_OUT.cmd"))"
    grep -E -- "$2" "$IT_OUT" | head -n 5 | sed 's/^/     | /'
}

check_cmp() { # DESC FILE1 FILE2
    if [ -f "$2" ] && [ -f "$3" ] && cmp -s "$2" "$3"; then
        pass "$1"
        return 0
    fi
    fail "$1" "$2 and $3 differ or are missing ($(wc -c "$2" "$3" 2>&1 | head -n 2 | tr '\n' ' '))"
}

check_eq() { # DESC EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        pass "$1"
        return 0
    fi
    fail "$1" "expected '$2', got '$3'"
}

# it_mark, then it_gate WHAT after the steps everything else needs: when one
# of them failed, the test stops with one clear line instead of a cascade.
it_mark() {
    IT_MARK=$IT_FAILED
}

it_gate() { # WHAT
    if [ "$IT_FAILED" -gt "${IT_MARK:-0}" ]; then
        fail "stopping: the remaining checks need $1"
        it_finish
        exit 1
    fi
}

# Wait (at most 30 s) until FILE has a line matching REGEX.
it_wait_line() { # FILE REGEX
    local _
    for _ in $(seq 1 300); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Make FILE (the output of a background command) the one check_out looks at.
it_use_output() { # FILE WHAT
    IT_OUT=$1
    echo "$2" >"$IT_OUT.cmd"
}

it_count() { # REGEX: number of lines of the last output matching
    grep -Ec -- "$1" "$IT_OUT" || true
}

it_finish() {
    if [ "$IT_FAILED" -ne 0 ] && [ -s "${IT_LOG:-/nonexistent}" ]; then
        echo "# $IT_NAME: last lines of the module log:"
        tail -n 15 "$IT_LOG" | sed 's/^/#   /'
    fi
    echo "$IT_PASSED passed, $IT_FAILED failed"
    [ "$IT_FAILED" -eq 0 ]
}

# ---- token helpers ----------------------------------------------------------

# The first steps on a fresh card: initialise a token on the free slot, set
# the user PIN as SO. Both are checks.
it_make_token() { # LABEL
    local label=$1
    check "init-token '$label' on the fresh card's free slot" \
        "${P11[@]}" --init-token --label "$label" --so-pin "$IT_SO_PIN"
    check "init-pin as SO on token '$label'" \
        "${P11[@]}" --token-label "$label" --login --login-type so --so-pin "$IT_SO_PIN" \
        --init-pin --pin "$IT_PIN"
}

it_keygen() { # KEYTYPE ID LABEL [extra pkcs11-tool options]
    local type=$1 id=$2 label=$3
    shift 3
    check "keypairgen $type id $id label $label" \
        "${P11[@]}" --token-label "$IT_TOKEN" --login --pin "$IT_PIN" \
        --keypairgen --key-type "$type" --id "$id" --label "$label" "$@"
}

# The set-up of the tool tests: a token with an RSA-2048 pair (id 01, label
# rsa2048) and a P-256 pair (id 02, label ec256), public keys in
# $IT_TMP/rsa.pem and $IT_TMP/ec256.pem. Stops the test when it fails.
it_token_with_keys() {
    it_mark
    it_make_token "$IT_TOKEN"
    it_keygen rsa:2048 01 rsa2048
    it_keygen EC:prime256v1 02 ec256
    it_pubkey 01 "$IT_TMP/rsa.pem"
    it_pubkey 02 "$IT_TMP/ec256.pem"
    it_gate "a token with an RSA and an EC key pair made with pkcs11-tool"
}

# pkcs11-tool signs $IT_TMP/data with MECH and key ID as the user of
# $IT_TOKEN (ECDSA in openssl's DER format); openssl dgst -sha256, with the
# extra options given (PSS padding...), verifies it with PEM. Two checks.
it_sign_verified() { # DESC MECH ID PEM [openssl dgst options...]
    local desc=$1 mech=$2 id=$3 pem=$4 sig="$IT_TMP/sig.$2" fmt=()
    shift 4
    case $mech in ECDSA*) fmt=(--signature-format openssl) ;; esac
    check "sign $desc" "${P11[@]}" --token-label "$IT_TOKEN" --login --pin "$IT_PIN" --sign \
        -m "$mech" ${fmt[@]+"${fmt[@]}"} --id "$id" -i "$IT_TMP/data" -o "$sig"
    check "openssl verifies $desc" openssl dgst -sha256 "$@" -verify "$pem" -signature "$sig" \
        "$IT_TMP/data"
}

# openssl encrypts a random secret to $IT_TMP/rsa.pem with RSA-OAEP
# (SHA-256, MGF1-SHA-256); pkcs11-tool decrypts it with key 01 as the user of
# $IT_TOKEN (WHERE: how the call goes, for the check's name); the plaintext
# is the secret ($IT_TMP/secret, kept for later checks). Three checks.
it_oaep_decrypts() { # WHERE
    local d=$IT_TMP
    head -c 48 /dev/urandom >"$d/secret"
    check "openssl encrypts to the RSA key with OAEP (SHA-256, MGF1-SHA-256)" openssl pkeyutl \
        -encrypt -pubin -inkey "$d/rsa.pem" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$d/secret" -out "$d/ct.oaep"
    check "decrypt RSA-PKCS-OAEP $1" "${P11[@]}" --token-label "$IT_TOKEN" --login \
        --pin "$IT_PIN" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 \
        --id 01 -i "$d/ct.oaep" -o "$d/pt.oaep"
    check_cmp "the OAEP plaintext is the secret" "$d/secret" "$d/pt.oaep"
}

# The public key of a token key pair as PEM, read with pkcs11-tool (DER
# SubjectPublicKeyInfo) and converted with openssl.
it_pubkey() { # ID OUT.pem
    local id=$1 pem=$2
    check "read public key id $id" \
        "${P11[@]}" --token-label "$IT_TOKEN" --read-object --type pubkey --id "$id" \
        -o "$pem.der"
    it_ok || return 0
    check "public key id $id parses as SubjectPublicKeyInfo" \
        openssl pkey -pubin -inform DER -in "$pem.der" -out "$pem"
}

# Raw r|s ECDSA signature (PKCS#11 format) to DER, built independently with
# openssl asn1parse -genconf.
it_rs_to_der() { # IN OUT
    local hex n r s
    hex=$(od -An -v -tx1 "$1" | tr -d ' \n')
    n=$((${#hex} / 2))
    [ "$n" -gt 0 ] && [ $((n % 2)) -eq 0 ] || return 1
    r=${hex:0:n}
    s=${hex:n}
    printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "$r" "$s" >"$2.cnf"
    openssl asn1parse -genconf "$2.cnf" -out "$2" >/dev/null
}

# An OpenSSL configuration that loads libengine-pkcs11-openssl with the
# module under test (the engine is initialised by -engine pkcs11); with
# `proxy`, without MODULE_PATH: the engine then loads p11-kit-proxy.
it_engine_conf() { # OUT [proxy]
    local enginesdir module_path="MODULE_PATH = $SKS_IT_MODULE"
    [ "${2:-}" != proxy ] || module_path=""
    enginesdir=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
    cat >"$1" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $enginesdir/pkcs11.so
$module_path
init = 0
[req]
distinguished_name = req_dn
[req_dn]
EOF
}

# A test CA and a server certificate for 127.0.0.1 / localhost, made with
# openssl alone. Files: $1/ca.key ca.pem server.key server.pem.
it_make_ca() { # DIR
    local d=$1
    mkdir -p "$d"
    check "test CA: key and self-signed certificate" \
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=SKS integration test CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    check "test CA: server key and request" \
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE" >"$d/server.ext"
    check "test CA: server certificate" \
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -CAcreateserial -days 2 -extfile "$d/server.ext" -out "$d/server.pem"
}

# Sign a certificate request with the test CA as a TLS client certificate.
it_ca_sign_client() { # CADIR CSR OUT.pem
    printf '%s\n' "extendedKeyUsage=clientAuth" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" >"$1/client.ext"
    check "test CA signs the client request ($(basename "$3"))" \
        openssl x509 -req -in "$2" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial \
        -days 2 -extfile "$1/client.ext" -out "$3"
}

# Start `openssl s_server -www` on a free port with the server certificate
# of the test CA in DIR, requiring a client certificate from CAFILE ("none":
# asking for none), with the extra s_server options given; sets IT_PORT,
# IT_SERVER_PID and IT_SERVER_LOG ($IT_TMP/s_server-$IT_PORT.log). It is
# stopped at exit anyway.
it_serve() { # DIR CAFILE|none [s_server options...]
    local d=$1 verify=(-CAfile "$2" -Verify 1 -verify_return_error) try log
    [ "$2" != none ] || verify=()
    shift 2
    for try in 1 2 3 4 5; do
        IT_PORT=$((20000 + RANDOM % 40000))
        log="$IT_TMP/s_server-$IT_PORT.log"
        openssl s_server -accept "127.0.0.1:$IT_PORT" -cert "$d/server.pem" -key "$d/server.key" \
            ${verify[@]+"${verify[@]}"} -www "$@" </dev/null >"$log" 2>&1 &
        IT_SERVER_PID=$!
        it_bg "$IT_SERVER_PID"
        for _ in $(seq 1 50); do
            grep -q '^ACCEPT' "$log" 2>/dev/null && { IT_SERVER_LOG=$log; return 0; }
            kill -0 "$IT_SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        it_stop "$IT_SERVER_PID"
        grep -qi 'in use' "$log" || { cat "$log"; return 1; }
        : "try $try: port $IT_PORT busy"
    done
    return 1
}

# it_serve for one connection (-naccept 1), requiring a client certificate
# from the test CA in CADIR.
it_start_server() { # CADIR
    it_serve "$1" "$1/ca.pem" -naccept 1
}

# The s_server log ($IT_OUT, see it_wait_server) shows the client certificate
# with subject CN verified: "depth=0 CN = ..." followed by "verify return:1".
check_client_verified() { # DESC CN
    local next
    next=$(awk -v want="depth=0 CN = $2" '$0 == want { f = 1; next } f { print; exit }' "$IT_OUT")
    if [ "$next" = "verify return:1" ]; then
        pass "$1"
    else
        fail "$1" "no 'depth=0 CN = $2' / 'verify return:1' in the server log"
        it_show_output
    fi
}

# Wait for the one-connection server to end and leave its log in $IT_OUT.
it_wait_server() {
    local _
    for _ in $(seq 1 100); do
        kill -0 "$IT_SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    it_server_log
}

# Stop the server and leave its log in $IT_OUT (a new output).
it_server_log() {
    it_stop "$IT_SERVER_PID"
    IT_SEQ=$((IT_SEQ + 1))
    IT_OUT="$IT_TMP/out/$IT_SEQ.log"
    echo "openssl s_server log" >"$IT_OUT.cmd"
    cp "$IT_SERVER_LOG" "$IT_OUT"
}
