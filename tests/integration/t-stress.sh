#!/bin/bash
# t-stress.sh - concurrency: 8 threads of one application signing and
# verifying at once through one module instance (p11-threads.c, module
# initialised with CKF_OS_LOCKING_OK), then two processes signing in a loop
# on the same embedded card (one SKS_PKCS11_CONF) while a third generates a
# key pair; afterwards the card still lists exactly the expected keys, to the
# module and to sks-tool, and every key still signs correctly.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
it_setup stress
T=$IT_TMP
THREADS_BIN=${SKS_IT_THREADS:-}
if [ -z "$THREADS_BIN" ] || [ ! -x "$THREADS_BIN" ]; then
    fail "the stress driver tests/integration/p11-threads is built" "not found: '$THREADS_BIN'"
    it_finish
    exit 1
fi
it_token_with_keys
DRIVER=("$THREADS_BIN" "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN")
ROUNDS=${SKS_IT_STRESS_ROUNDS:-100}
# The two processes sign long enough for the key generation to fall inside.
PROC_ROUNDS=$((4 * ROUNDS))

# ---- threads -----------------------------------------------------------------------
mkdir -p "$T/threads"
check "8 threads x $ROUNDS rounds: find, sign (ECDSA-SHA256), verify" "${DRIVER[@]}" ec256 8 \
    "$ROUNDS" "$T/threads"
check_out "every signature of every thread verified" \
    "8 threads x $ROUNDS rounds: $((8 * ROUNDS)) signatures verified, 0 failed"
if it_rs_to_der "$T/threads/sig.bin" "$T/threads/sig.der"; then
    check "openssl verifies a signature made under load" openssl dgst -sha256 \
        -verify "$T/ec256.pem" -signature "$T/threads/sig.der" "$T/threads/msg.bin"
else
    fail "openssl verifies a signature made under load" "no signature written by the driver"
fi
check "8 threads x $ROUNDS rounds with the RSA key (SHA256-RSA-PKCS)" "${DRIVER[@]}" rsa2048 8 \
    "$ROUNDS" "$T/threads"
check_out "every RSA signature verified" \
    "8 threads x $ROUNDS rounds: $((8 * ROUNDS)) signatures verified, 0 failed"
check "openssl verifies an RSA signature made under load" openssl dgst -sha256 \
    -verify "$T/rsa.pem" -signature "$T/threads/sig.bin" "$T/threads/msg.bin"

# ---- processes sharing the card ---------------------------------------------------------
"${DRIVER[@]}" ec256 2 "$PROC_ROUNDS" >"$T/proc-a.log" 2>&1 &
pid_a=$!
it_bg "$pid_a"
"${DRIVER[@]}" rsa2048 2 "$PROC_ROUNDS" >"$T/proc-b.log" 2>&1 &
pid_b=$!
it_bg "$pid_b"
check "a third process generates a key pair meanwhile" "${P11[@]}" --token-label "$IT_TOKEN" \
    --login --pin "$IT_PIN" --keypairgen --key-type EC:prime256v1 --id 05 --label concurrent
if kill -0 "$pid_a" 2>/dev/null && kill -0 "$pid_b" 2>/dev/null; then
    pass "both signing processes were still running after the key generation"
else
    fail "both signing processes were still running after the key generation" \
        "a process ended early: raise SKS_IT_STRESS_ROUNDS for a real overlap"
fi
rc_a=0
wait "$pid_a" || rc_a=$?
rc_b=0
wait "$pid_b" || rc_b=$?
IT_PIDS=""
for p in a:$rc_a b:$rc_b; do
    name=${p%%:*}
    rc=${p#*:}
    IT_SEQ=$((IT_SEQ + 1))
    IT_OUT="$T/proc-$name.log"
    echo "p11-threads process $name" >"$IT_OUT.cmd"
    want="2 threads x $PROC_ROUNDS rounds: $((2 * PROC_ROUNDS)) signatures verified, 0 failed"
    if [ "$rc" -eq 0 ] && grep -q "$want" "$IT_OUT"; then
        pass "process $name signed and verified $((2 * PROC_ROUNDS)) times on the shared card"
    else
        fail "process $name signed and verified $((2 * PROC_ROUNDS)) times on the shared card" \
            "exit status $rc"
        it_show_output
    fi
done

# ---- the card afterwards -------------------------------------------------------------------
check "-O after the concurrent use" "${P11[@]}" --token-label "$IT_TOKEN" --login --pin "$IT_PIN" \
    -O --type privkey
check_eq "the card holds exactly three private keys" 3 "$(it_count '^Private Key Object')"
for label in rsa2048 ec256 concurrent; do
    check_out "private key $label is listed" "^  label: +$label\$"
done
check "sks-tool --list-keys reads the card" "$SKS_IT_SKS_TOOL" --state-dir "$IT_STATE/card" --list-keys
check_out "sks-tool counts three keys" '^3 keys$'
for label in rsa2048 ec256 concurrent; do
    check_out "sks-tool lists $label" "Friendly name: +$label\$"
done
head -c 1000 /dev/urandom >"$T/data"
check "the new key signs" "${P11[@]}" --token-label "$IT_TOKEN" --login --pin "$IT_PIN" --sign \
    -m ECDSA-SHA256 --signature-format openssl --id 05 -i "$T/data" -o "$T/sig.new"
check "its public key" "${P11[@]}" --token-label "$IT_TOKEN" --read-object --type pubkey --id 05 \
    -o "$T/new.der"
check "openssl verifies the new key's signature" openssl dgst -sha256 -verify "$T/new.der" \
    -keyform DER -signature "$T/sig.new" "$T/data"
check "the old keys still sign" "${P11[@]}" --token-label "$IT_TOKEN" --login --pin "$IT_PIN" \
    --sign -m SHA256-RSA-PKCS --id 01 -i "$T/data" -o "$T/sig.rsa"
check "openssl verifies it" openssl dgst -sha256 -verify "$T/rsa.pem" -signature "$T/sig.rsa" "$T/data"

it_finish
