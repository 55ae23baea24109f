#!/bin/bash
# t-pcsc-faults.sh - the module's PC/SC recovery paths against a real
# pcscd (pcscd-env.sh: an isolated pcscd, vpcd, the sks-card daemon), with
# faults injected where they are hard to cause from outside at the right
# moment: pcsc-fault.so (LD_PRELOAD into the client process) answers chosen
# SKS calls or transactions itself, see pcsc-fault.c.
#
# A signature after login goes to the card as one APDU without a PC/SC
# transaction (src/token/tok_card.c, single_apdu_call); these checks are
# about what happens around that APDU:
#   a. its transmission reports a reset and, when the module begins a
#      transaction to recover, pcscd is gone (SCARD_E_NO_SERVICE): C_Sign
#      answers CKR_DEVICE_REMOVED (pcscd gone counts as a removal:
#      src/transport/pcsc_status.c, tok_transport_rv), the process goes on,
#      and a new slot list finds the card again and signs;
#   b. the card answers 69 85 (another application selected its own applet)
#      and, when the module takes the transaction to SELECT again, the card
#      turns out to have been reset meanwhile: the card forgot the PIN, so
#      C_Sign answers CKR_USER_NOT_LOGGED_IN, and after C_Login it signs;
#   c. another process holds a PC/SC transaction for 1 s: the signature
#      waits for it and succeeds (openssl verifies it);
#   d. a card of an older protocol, without enumerateKeyAttributes (90) and
#      countKeys (91): pkcs11-tool lists the same tokens as with the full
#      card (the "SKS (no PIN)" token too), finds and signs with keys, and the
#      module's APDU trace shows that 90 and 91 got only NO_METHOD answers
#      and that the keys were read with enumerateKeys and getKeyAttributes;
#      and a card without countKeys alone reads the keys with 90.
#
# The fault library goes after whatever LD_PRELOAD holds already (libasan.so
# for a module built with --enable-sanitizers).
#
# Needs root for the isolated pcscd: without it the test fails, unless
# SKS_ALLOW_NO_PCSCD=1 lets it skip.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pcscd-env.sh
. "$here/pcscd-env.sh"
it_setup pcsc-faults
T=$IT_TMP
SKS_CARD=${SKS_IT_PREFIX:?run through run-all.sh}/sbin/sks-card
DRIVERS=$(dirname "${SKS_IT_PCSC_DRIVER:-${SKS_IT_THREADS:-./p11-threads}}")
STEPS=${SKS_IT_STEPS:-$DRIVERS/p11-steps}
HOLD=${SKS_IT_PCSC_HOLD:-$DRIVERS/pcsc-hold}
FAULT=${SKS_IT_PCSC_FAULT:-$DRIVERS/.libs/pcsc-fault.so}
NOPIN_KEY=${SKS_IT_NOPIN_KEY:-$DRIVERS/nopin-key}
CARD="$T/card"
SKS_CARD_LOG="$T/sks-card.log"
READER=$(vpcd_reader 35963)
TRACE="$T/apdu.trace"
NOPIN_TOKEN="SKS (no PIN)"

# The N-th "STEP <CKR> ..." line of p11-steps in the last output, as "STEP <CKR>".
step() { # STEP N
    awk -v s="$1" -v n="$2" '$1 == s && ++i == n { print $1, $2; exit }' "$IT_OUT"
}

# The SKS calls in the APDU trace, one line each: the method and the status
# byte of the answer, in hex ("5B 0F": countKeys answered NO_METHOD; "--"
# when no answer was traced). A call is "> 80100000" with a short Lc (one
# byte, not 00) or an extended one (00 and two bytes) before the method
# byte; the answer ends with 9000 (docs/protocol.md, section 4).
trace_calls() {
    awk '
        function flush() { if (m != "") print m, "--"; m = "" }
        /^> / {
            flush()
            if (substr($2, 1, 8) == "80100000")
                m = substr($2, 9, 2) == "00" ? substr($2, 15, 2) : substr($2, 11, 2)
            next
        }
        /^< / {
            sw = substr($2, length($2) - 3)
            if (m != "")
                print m, (sw == "9000" ? substr($2, 1, 2) : "sw" sw)
            m = ""
        }
        END { flush() }' "$TRACE"
}

calls() { # REGEX: how many traced calls match ("METHOD STATUS")
    trace_calls | grep -Ec -- "$1" || true
}

check_calls() { # DESC REGEX: at least one traced call matches
    local n
    n=$(calls "$2")
    if [ "$n" -ge 1 ]; then
        pass "$1 ($n)"
    else
        fail "$1" "no call /$2/ in the trace: $(trace_calls | tr '\n' ',')"
    fi
}

# What pkcs11-tool -L says about the tokens (slots, labels, serials), from the last output.
tokens_of() {
    grep -E '^Slot [0-9]+ |serial num' "$IT_OUT" || true
}

# ---- set-up ----------------------------------------------------------------------------
it_mark
check "sks-card is installed in sbin" test -x "$SKS_CARD"
check "the driver p11-steps is built" test -x "$STEPS"
check "the other application pcsc-hold is built" test -x "$HOLD"
check "the fault library pcsc-fault.so is built" test -f "$FAULT"
check "the driver nopin-key is built" test -x "$NOPIN_KEY"
it_gate "sks-card and the test drivers"

pcscd_start_or_end "the test"
it_mark
sks_card_start_checked "$CARD" "sks-card serves a fresh card in '$READER'"
it_write_conf "$SKS_PKCS11_CONF" "$IT_STATE" "transport = pcsc" \
    "manufacturer_ca = $CARD/manufacturer/ca-cert.pem" "apdu_trace = $TRACE"
P11=("${IN_PCSCD[@]}" pkcs11-tool --module "$SKS_IT_MODULE")
# A client process with the fault library (after whatever LD_PRELOAD holds already).
FAULTY=("${IN_PCSCD[@]}" env LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD }$FAULT")
it_token_with_keys
# A key without PIN (the "SKS (no PIN)" token), put on by an issuer while
# sks-card is stopped (nothing else may have the card open).
it_mark
sks_card_stop
check_eq "sks-card stops on SIGTERM" 0 "$SKS_CARD_RC"
if pcscd_env_no_card "$READER"; then
    pass "pcscd sees the card gone"
else
    fail "pcscd sees the card gone" "opensc-tool -l still shows a card in '$READER'"
fi
check "nopin-key: a P-256 key without PIN (id 0a, label nopin)" \
    "$NOPIN_KEY" "$CARD" "$T/issuer" ec256 0a nopin
sks_card_start_checked "$CARD" "sks-card serves the card again" \
    "the card with the PIN token and a key without PIN"
head -c 3000 /dev/urandom >"$T/data"
RUN=("$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN")

# ---- a. a reset on the signature's APDU, then pcscd gone ---------------------------------
check "(a) reset on the deferred signature, no pcscd at the next begin: the process ends normally" \
    "${FAULTY[@]}" SKS_FAULT_RESET_ON_TRANSMIT=67 SKS_FAULT_BEGIN_AFTER=no-service \
    "$STEPS" "${RUN[@]}" ec256 "$T/data" "$T/sig.a" login sign reopen login sign
check_out "... the signature (method 67) met the reset" \
    '^pcsc-fault: method 67 call 1: SCARD_W_RESET_CARD$'
check_out "... the SCardBeginTransaction of the recovery met SCARD_E_NO_SERVICE" \
    '^pcsc-fault: SCardBeginTransaction: SCARD_E_NO_SERVICE$'
check_eq "... C_Sign answers CKR_DEVICE_REMOVED" "sign CKR_DEVICE_REMOVED" "$(step sign 1)"
check_eq "... a new slot list finds the token again and opens a session" "reopen CKR_OK" \
    "$(step reopen 1)"
check_eq "... C_Login works" "login CKR_OK" "$(step login 2)"
check_eq "... and C_Sign" "sign CKR_OK" "$(step sign 2)"
check_eq "... C_Finalize" "finalize CKR_OK" "$(step finalize 1)"
if [ "$(step sign 2)" = "sign CKR_OK" ] && it_rs_to_der "$T/sig.a" "$T/sig.a.der"; then
    check "openssl verifies the signature made after the recovery" openssl dgst -sha256 \
        -verify "$T/ec256.pem" -signature "$T/sig.a.der" "$T/data"
fi

# ---- b. 69 85 on the signature, and the card was reset meanwhile ------------------------
check "(b) 69 85 on the deferred signature, then a reset seen at begin: the process ends normally" \
    "${FAULTY[@]}" SKS_FAULT_FAKE_6985=67 SKS_FAULT_BEGIN_AFTER=reset \
    "$STEPS" "${RUN[@]}" ec256 "$T/data" "$T/sig.b" login sign login sign
check_out "... the signature (method 67) was answered 69 85" '^pcsc-fault: method 67 call 1: 69 85$'
check_out "... another connection reset the card" \
    '^pcsc-fault: another connection reset the card: 0x00000000$'
check_out "... and pcscd answered the module's SCardBeginTransaction with SCARD_W_RESET_CARD" \
    '^pcsc-fault: SCardBeginTransaction after the reset: 0x80100068$'
check_eq "... C_Sign answers CKR_USER_NOT_LOGGED_IN (the card forgot the PIN)" \
    "sign CKR_USER_NOT_LOGGED_IN" "$(step sign 1)"
check_eq "... C_Login again works" "login CKR_OK" "$(step login 2)"
check_eq "... and the next C_Sign too" "sign CKR_OK" "$(step sign 2)"
if [ "$(step sign 2)" = "sign CKR_OK" ] && it_rs_to_der "$T/sig.b" "$T/sig.b.der"; then
    check "openssl verifies that signature" openssl dgst -sha256 -verify "$T/ec256.pem" \
        -signature "$T/sig.b.der" "$T/data"
fi

# ---- c. another process holds a PC/SC transaction while we sign ------------------------
# The key is found and the signature initialised before pcsc-hold takes the
# card: C_Sign is then the one APDU sent without a transaction, and pcscd
# holds it back until the other application's transaction ends.
rm -f "$T/held"
"${IN_PCSCD[@]}" "$STEPS" "${RUN[@]}" rsa2048 "$T/data" "$T/sig.c" login signinit "wait=$T/held" \
    sign >"$T/c.out" 2>&1 9>&- &
signer=$!
it_bg "$signer"
if it_wait_line "$T/c.out" '^signinit CKR_OK$'; then
    check "(c) pcsc-hold takes a PC/SC transaction on '$READER' and holds it for 1 s" \
        "${IN_PCSCD[@]}" "$HOLD" "$READER" 1000 "$T/held"
else
    fail "(c) the signing process logs in and initialises a signature" "$(cat "$T/c.out")"
fi
touch "$T/held" # whatever happened: let the signer go on
rc=0
timeout -k 5 "$IT_TIMEOUT" tail --pid="$signer" -f /dev/null || true
wait "$signer" || rc=$?
it_use_output "$T/c.out" "p11-steps login signinit wait sign (pcsc-hold meanwhile)"
check_eq "... the signing process ends normally" 0 "$rc"
check_eq "... its C_Sign answers CKR_OK" "sign CKR_OK" "$(step sign 1)"
secs=$(awk '$1 == "sign" { print $3; exit }' "$T/c.out")
if awk -v s="${secs:-0}" 'BEGIN { exit !(s >= 0.5) }'; then
    pass "... after waiting for the other application (${secs} s)"
else
    fail "... after waiting for the other application" \
        "C_Sign took ${secs:-?} s (the transaction was held 1 s)"
fi
if [ "$(step sign 1)" = "sign CKR_OK" ]; then
    check "openssl verifies the RSA signature" openssl dgst -sha256 -verify "$T/rsa.pem" \
        -signature "$T/sig.c" "$T/data"
fi

# ---- d. a card without enumerateKeyAttributes (90) and countKeys (91) -------------------
: >"$TRACE"
check "pkcs11-tool -L, the card with every method" "${P11[@]}" -L
NOPIN_SLOT_RE="^Slot [0-9]+ \(0x[0-9a-f]+\): $READER: SKS \(no PIN\)"
check_out "... the token '$NOPIN_TOKEN' is listed" "$NOPIN_SLOT_RE"
tokens_of >"$T/tokens.all"
check_calls "... the trace has countKeys (91) answered OK" '^5B 00$'
check_eq "... and no getKeyAttributes (66): the keys are read when first needed" 0 "$(calls '^42 ')"

: >"$TRACE"
check "pkcs11-tool -L, the card without methods 90 and 91" \
    "${FAULTY[@]}" SKS_FAULT_NO_METHODS=90,91 pkcs11-tool --module "$SKS_IT_MODULE" -L
check_out "... countKeys (91) was answered NO_METHOD" '^pcsc-fault: method 91: NO_METHOD$'
check_out "... enumerateKeyAttributes (90) was answered NO_METHOD" \
    '^pcsc-fault: method 90: NO_METHOD$'
tokens_of >"$T/tokens.old"
check_cmp "... the same tokens (slots, labels, serials) as with every method" "$T/tokens.all" \
    "$T/tokens.old"
check_out "... '$NOPIN_TOKEN' among them" "$NOPIN_SLOT_RE"
check_eq "... the trace: no call of 90 or 91 answered other than NO_METHOD (status 0F)" 0 \
    "$(calls '^5[AB] ([^0]|0[^F])')"
check_calls "... enumerateKeys (65) answered OK" '^41 00$'
n66=$(calls '^42 00$')
if [ "$n66" -ge 3 ]; then
    pass "... getKeyAttributes (66) answered OK for each of the 3 keys ($n66 calls)"
else
    fail "... getKeyAttributes (66) answered OK for each of the 3 keys" "$n66 calls"
fi

check "sign ECDSA-SHA256 with key 02, the card without methods 90 and 91" \
    "${FAULTY[@]}" SKS_FAULT_NO_METHODS=90,91 pkcs11-tool --module "$SKS_IT_MODULE" \
    --token-label "$IT_TOKEN" --login --pin "$IT_PIN" --sign -m ECDSA-SHA256 \
    --signature-format openssl --id 02 -i "$T/data" -o "$T/sig.d"
check_out "... (90 and 91 answered NO_METHOD)" '^pcsc-fault: method 9[01]: NO_METHOD$'
check "openssl verifies it" openssl dgst -sha256 -verify "$T/ec256.pem" -signature "$T/sig.d" \
    "$T/data"
check "the key without PIN is found on '$NOPIN_TOKEN', the card without methods 90 and 91" \
    "${FAULTY[@]}" SKS_FAULT_NO_METHODS=90,91 pkcs11-tool --module "$SKS_IT_MODULE" \
    --token-label "$NOPIN_TOKEN" -O
check_out "... its private key" 'label: +nopin'
check "... and signs without login" \
    "${FAULTY[@]}" SKS_FAULT_NO_METHODS=90,91 pkcs11-tool --module "$SKS_IT_MODULE" \
    --token-label "$NOPIN_TOKEN" --sign -m ECDSA-SHA256 --signature-format openssl --id 0a \
    -i "$T/data" -o "$T/sig.nopin"
check "... its public key, read the same way" \
    "${FAULTY[@]}" SKS_FAULT_NO_METHODS=90,91 pkcs11-tool --module "$SKS_IT_MODULE" \
    --token-label "$NOPIN_TOKEN" --read-object --type pubkey --id 0a -o "$T/nopin.der"
if it_ok && openssl pkey -pubin -inform DER -in "$T/nopin.der" -out "$T/nopin.pem"; then
    check "openssl verifies the no-PIN key's signature" openssl dgst -sha256 \
        -verify "$T/nopin.pem" -signature "$T/sig.nopin" "$T/data"
fi

: >"$TRACE"
check "pkcs11-tool -L, the card without countKeys (91) only" \
    "${FAULTY[@]}" SKS_FAULT_NO_METHODS=91 pkcs11-tool --module "$SKS_IT_MODULE" -L
check_out "... countKeys was answered NO_METHOD" '^pcsc-fault: method 91: NO_METHOD$'
check_no_out "... enumerateKeyAttributes was not touched" '^pcsc-fault: method 90'
tokens_of >"$T/tokens.no91"
check_cmp "... the same tokens as with every method" "$T/tokens.all" "$T/tokens.no91"
check_calls "... the trace: the keys read with enumerateKeyAttributes (90), answered OK" \
    '^5A 00$'
check_eq "... and no getKeyAttributes (66)" 0 "$(calls '^42 ')"

it_finish
