#!/bin/bash
# t-pkcs11-tool.sh - the module driven by OpenSC's pkcs11-tool on a fresh
# embedded card: the usual first steps (init token, init PIN, key pair
# generation), listing, signatures and decryption checked with openssl, ECDH
# against an openssl key, certificate and data objects, PIN change, PIN
# blocking and unblocking with the SO PIN, pkcs11-tool's own self tests, and
# re-initialising a token with its SO PIN.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
it_setup pkcs11-tool
T=$IT_TMP
TOK=(--token-label "$IT_TOKEN")
USER=(--token-label "$IT_TOKEN" --login --pin "$IT_PIN")

# One line per object of a `pkcs11-tool -O` listing (from $IT_OUT):
# "KIND;LABEL;ID;USAGE;ACCESS", KIND one of "privkey RSA", "pubkey EC 256",
# "cert", "data", "secrkey".
objects() {
    awk '
    function flush() {
        if (kind != "") print kind ";" label ";" id ";" usage ";" access
        kind = ""; label = ""; id = ""; usage = ""; access = ""
    }
    /^Private Key Object;/ { flush(); kind = "privkey " $4 }
    /^Public Key Object;/ {
        flush(); kind = "pubkey " $4
        if (match($0, /[0-9]+ bits/)) kind = kind " " substr($0, RSTART, RLENGTH - 5)
    }
    /^Certificate Object;/ { flush(); kind = "cert" }
    /^Secret Key Object;/ { flush(); kind = "secrkey" }
    /^Data object/ { flush(); kind = "data" }
    /^  label:/ { v = $0; sub(/^  label: */, "", v); gsub(/'\''/, "", v); label = v }
    /^  ID:/ { id = $2 }
    /^  Usage:/ { v = $0; sub(/^  Usage: */, "", v); usage = v }
    /^  Access:/ { v = $0; sub(/^  Access: */, "", v); access = v }
    END { flush() }' "$IT_OUT"
}

has_object() { # DESC REGEX (anchored, over the objects() lines)
    if objects | grep -Eq -- "^$2\$"; then
        pass "$1"
    else
        fail "$1" "no object matches /^$2\$/; objects listed:"
        objects | sed 's/^/     | /'
    fi
}

no_object() { # DESC REGEX
    if objects | grep -Eq -- "^$2\$"; then
        fail "$1" "an object matches /^$2\$/:"
        objects | grep -E -- "^$2\$" | sed 's/^/     | /'
    else
        pass "$1"
    fi
}

mechs_present() { # DESC NAME...: each NAME is a line of the -M output ($IT_OUT)
    local desc=$1 missing="" m
    shift
    for m in "$@"; do
        grep -Eq "^  $m(,|\$)" "$IT_OUT" || missing="$missing $m"
    done
    if [ -z "$missing" ]; then pass "$desc"; else fail "$desc" "missing:$missing"; fi
}

mechs_flag() { # DESC FLAG yes|no NAME...: the mechanism lines have (or lack) FLAG
    local desc=$1 flag=$2 want=$3 bad="" m line
    shift 3
    for m in "$@"; do
        line=$(grep -E "^  $m(,|\$)" "$IT_OUT" || true)
        if [ "$want" = yes ]; then
            printf '%s' "$line" | grep -Eq ", $flag(,|\$)" || bad="$bad $m"
        else
            printf '%s' "$line" | grep -Eq ", $flag(,|\$)" && bad="$bad $m"
        fi
    done
    if [ -z "$bad" ]; then pass "$desc"; else fail "$desc" "wrong for:$bad"; fi
}

# The SubjectPublicKeyInfo of an EC public key built from the CKA_EC_POINT
# shown in a `-O` listing ($IT_OUT; a DER OCTET STRING holding the point) with
# openssl asn1parse, independently of pkcs11-tool's own key export (which in
# OpenSC 0.23 cannot export P-384 keys: "cannot create EVP_PKEY").
ec_spki_from_listing() { # LABEL CURVE OUT.pem
    local point hdr n rest
    point=$(awk -v l="$1" '/Object/ { pt = "" } /^  EC_POINT:/ { pt = $2 }
        /^  label:/ { v = $0; sub(/^  label: */, "", v); if (v == l && pt != "") { print pt; exit } }' "$IT_OUT")
    [ "${point:0:2}" = 04 ] || return 1
    n=$((16#${point:2:2}))
    [ "$n" -lt 128 ] || return 1
    rest=${point:4}
    [ "${#rest}" -eq $((2 * n)) ] || return 1
    hdr="asn1=SEQUENCE:spki\n[spki]\nalg=SEQUENCE:alg\nkey=FORMAT:HEX,BITSTRING:%s\n"
    hdr="${hdr}[alg]\noid=OID:id-ecPublicKey\ncurve=OID:%s\n"
    # shellcheck disable=SC2059
    printf "$hdr" "$rest" "$2" >"$3.cnf"
    openssl asn1parse -genconf "$3.cnf" -out "$3.der" >/dev/null &&
        openssl pkey -pubin -inform DER -in "$3.der" -out "$3"
}

# ---- a fresh card ------------------------------------------------------------
check "-I shows the library" "${P11[@]}" -I
check_out "-I reports Cryptoki 2.40" '^Cryptoki version 2\.40'

check "-L on a fresh card" "${P11[@]}" -L
check_eq "a fresh card shows one slot (the free slot)" 1 "$(it_count '^Slot [0-9]+ ')"
check_out "the free slot's token is uninitialised" 'token state: +uninitialized'
check "the module created the card under state_dir" test -d "$IT_STATE/card"
check "the module did not touch the default location" test ! -e "$XDG_DATA_HOME/sks"

# ---- the usual first steps -----------------------------------------------------
it_mark
it_make_token "$IT_TOKEN"
it_gate "a token created by --init-token and a user PIN set by --init-pin"

check "-L after init-token" "${P11[@]}" -L
check_out "the new token is listed with its label" "token label +: $IT_TOKEN\$"
check_out "token manufacturer SKS" 'token manufacturer : SKS$'
check_out "token model 'SKS card'" 'token model +: SKS card$'
check_out "token serial number has 16 characters" 'serial num +: [^ ]{16}$'
check_out "token PIN length range 4..64 (the local issuer's PIN policy)" 'pin min/max +: 4/64$'
check_out "token flags: login required, rng, token initialized, PIN initialized" \
    'token flags +: .*login required.*'
flags=$(awk -v t="$IT_TOKEN" '$0 ~ "token label +: " t "$" { f = 1 } f && /token flags/ { print; exit }' "$IT_OUT")
for flag in 'login required' rng 'token initialized' 'PIN initialized'; do
    case $flags in
    *"$flag"*) pass "token flag '$flag'" ;;
    *) fail "token flag '$flag'" "flags: $flags" ;;
    esac
done
check_out "a free slot is still offered for another token" 'token state: +uninitialized'
order=$(grep -E 'token label +: |token state: +uninitialized' "$IT_OUT" | head -n 1)
case $order in
*"$IT_TOKEN"*) pass "slot order: the policy token comes before the free slot" ;;
*) fail "slot order: the policy token comes before the free slot" "first: $order" ;;
esac

check "-M on the token" "${P11[@]}" "${TOK[@]}" -M
mechs_present "key pair generation mechanisms" RSA-PKCS-KEY-PAIR-GEN ECDSA-KEY-PAIR-GEN
mechs_present "RSA mechanisms" RSA-PKCS RSA-PKCS-PSS RSA-PKCS-OAEP SHA1-RSA-PKCS SHA224-RSA-PKCS \
    SHA256-RSA-PKCS SHA384-RSA-PKCS SHA512-RSA-PKCS SHA1-RSA-PKCS-PSS SHA224-RSA-PKCS-PSS \
    SHA256-RSA-PKCS-PSS SHA384-RSA-PKCS-PSS SHA512-RSA-PKCS-PSS
mechs_present "EC mechanisms" ECDSA ECDSA-SHA1 ECDSA-SHA224 ECDSA-SHA256 ECDSA-SHA384 ECDSA-SHA512 \
    ECDH1-DERIVE
mechs_present "digests" SHA-1 SHA224 SHA256 SHA384 SHA512
mechs_present "secret key mechanisms" AES-KEY-GEN AES-ECB AES-CBC AES-CBC-PAD AES-GCM AES-KEY-WRAP \
    GENERIC-SECRET-KEY-GEN
mechs_flag "card mechanisms are flagged hw" hw yes RSA-PKCS RSA-PKCS-PSS RSA-PKCS-OAEP \
    SHA256-RSA-PKCS SHA256-RSA-PKCS-PSS ECDSA ECDSA-SHA256 ECDH1-DERIVE RSA-PKCS-KEY-PAIR-GEN \
    ECDSA-KEY-PAIR-GEN
mechs_flag "module software mechanisms are not flagged hw" hw no AES-ECB AES-CBC AES-GCM AES-KEY-GEN \
    SHA256
mechs_flag "RSA-PKCS can sign and decrypt" sign yes RSA-PKCS RSA-PKCS-PSS SHA256-RSA-PKCS
mechs_flag "RSA-PKCS and OAEP can decrypt" decrypt yes RSA-PKCS RSA-PKCS-OAEP
mechs_flag "ECDH1-DERIVE derives" derive yes ECDH1-DERIVE
check_no_out "raw RSA (RSA-X-509) is not offered" '^  RSA-X-509'

check_fail "keypairgen without login is refused" 'CKR_USER_NOT_LOGGED_IN' \
    "${P11[@]}" "${TOK[@]}" --keypairgen --key-type EC:prime256v1 --id 99 --label nologin

it_mark
it_keygen rsa:2048 01 rsa2048
check_out "keypairgen prints the new pair" 'Key pair generated'
it_keygen EC:prime256v1 02 ec256
it_keygen EC:secp384r1 03 ec384
it_gate "the three key pairs generated with --keypairgen"

# ---- listing --------------------------------------------------------------------
check "-O without login" "${P11[@]}" "${TOK[@]}" -O
no_object "private keys are hidden before login" 'privkey .*'
has_object "the RSA public key is visible without login" 'pubkey RSA 2048;rsa2048;01;.*'

check "-O after login" "${P11[@]}" "${USER[@]}" -O
has_object "RSA private key rsa2048 id 01" 'privkey RSA;rsa2048;01;.*'
has_object "RSA public key, 2048 bits" 'pubkey RSA 2048;rsa2048;01;.*'
has_object "EC private key ec256 id 02" 'privkey EC;ec256;02;.*'
has_object "EC public key, 256 bits" 'pubkey EC 256;ec256;02;.*'
has_object "EC private key ec384 id 03" 'privkey EC;ec384;03;.*'
has_object "EC public key, 384 bits" 'pubkey EC 384;ec384;03;.*'
has_object "a certificate with id 01 (the key's path)" 'cert;[^;]*;01;.*'
has_object "a certificate with id 02" 'cert;[^;]*;02;.*'
has_object "RSA private key usage: sign and decrypt" 'privkey RSA;rsa2048;01;[^;]*decrypt[^;]*;.*'
has_object "RSA private key usage includes sign" 'privkey RSA;rsa2048;01;[^;]*sign[^;]*;.*'
has_object "EC private key usage: sign and derive" 'privkey EC;ec256;02;[^;]*sign[^;]*derive[^;]*;.*'
has_object "private key access: sensitive, always sensitive, never extractable, local" \
    'privkey RSA;rsa2048;01;[^;]*;sensitive, always sensitive, never extractable, local'

# ---- public keys ----------------------------------------------------------------
it_pubkey 01 "$T/rsa.pem"
it_pubkey 02 "$T/ec256.pem"
check "-O for the EC points" "${P11[@]}" "${TOK[@]}" -O --type pubkey
if ec_spki_from_listing ec384 secp384r1 "$T/ec384.pem"; then
    pass "P-384 public key from CKA_EC_POINT (a DER OCTET STRING) and CKA_EC_PARAMS"
else
    fail "P-384 public key from CKA_EC_POINT (a DER OCTET STRING) and CKA_EC_PARAMS"
fi
if ec_spki_from_listing ec256 prime256v1 "$T/ec256-listing.pem"; then
    check_cmp "P-256 key from CKA_EC_POINT equals pkcs11-tool's export" "$T/ec256.pem" \
        "$T/ec256-listing.pem"
else
    fail "P-256 public key from CKA_EC_POINT" "no usable EC_POINT for ec256 in the listing"
fi
check "RSA public key details" openssl pkey -pubin -in "$T/rsa.pem" -noout -text
check_out "RSA public key is 2048 bits" 'Public-Key: \(2048 bit\)'
check_out "RSA public exponent 65537" 'Exponent: 65537'
check "P-256 public key details" openssl pkey -pubin -in "$T/ec256.pem" -noout -text
check_out "P-256 key is on prime256v1" 'NIST CURVE: P-256|prime256v1'
check "P-384 public key details" openssl pkey -pubin -in "$T/ec384.pem" -noout -text
check_out "P-384 key is on secp384r1" 'NIST CURVE: P-384|secp384r1'

# ---- signatures, verified by openssl --------------------------------------------
head -c 3000 /dev/urandom >"$T/data"
openssl dgst -sha256 -binary "$T/data" >"$T/data.sha256"
openssl dgst -sha384 -binary "$T/data" >"$T/data.sha384"

check "sign RSA-PKCS (raw input)" "${P11[@]}" "${USER[@]}" --sign -m RSA-PKCS --id 01 \
    -i "$T/data.sha256" -o "$T/sig.rsa-pkcs"
check "openssl recovers the RSA-PKCS signed data" openssl pkeyutl -verifyrecover -pubin \
    -inkey "$T/rsa.pem" -in "$T/sig.rsa-pkcs" -out "$T/recovered"
check_cmp "recovered data equals the signed data" "$T/data.sha256" "$T/recovered"

it_sign_verified SHA256-RSA-PKCS SHA256-RSA-PKCS 01 "$T/rsa.pem"

# pkcs11-tool's defaults for SHA256-RSA-PKCS-PSS: MGF1-SHA256, salt = 32 bytes.
it_sign_verified "SHA256-RSA-PKCS-PSS (salt 32)" SHA256-RSA-PKCS-PSS 01 "$T/rsa.pem" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32

check "sign RSA-PKCS-PSS over a SHA-256 hash" "${P11[@]}" "${USER[@]}" --sign -m RSA-PKCS-PSS \
    --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 01 -i "$T/data.sha256" -o "$T/sig.pss-raw"
check "openssl pkeyutl verifies RSA-PKCS-PSS" openssl pkeyutl -verify -pubin -inkey "$T/rsa.pem" \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 \
    -in "$T/data.sha256" -sigfile "$T/sig.pss-raw"

it_sign_verified "ECDSA-SHA256 on P-256 (openssl format)" ECDSA-SHA256 02 "$T/ec256.pem"

check "sign ECDSA-SHA256 (raw r|s)" "${P11[@]}" "${USER[@]}" --sign -m ECDSA-SHA256 --id 02 \
    -i "$T/data" -o "$T/sig.ecdsa256.rs"
check_eq "raw P-256 signature is 64 bytes" 64 "$(wc -c <"$T/sig.ecdsa256.rs" | tr -d ' ')"
if it_rs_to_der "$T/sig.ecdsa256.rs" "$T/sig.ecdsa256.der"; then
    check "openssl verifies the raw P-256 signature (r|s to DER)" openssl dgst -sha256 \
        -verify "$T/ec256.pem" -signature "$T/sig.ecdsa256.der" "$T/data"
else
    fail "openssl verifies the raw P-256 signature (r|s to DER)" "cannot convert the signature"
fi

check "sign ECDSA over a SHA-384 hash with the P-384 key" "${P11[@]}" "${USER[@]}" --sign -m ECDSA \
    --id 03 -i "$T/data.sha384" -o "$T/sig.ecdsa384.rs"
check_eq "raw P-384 signature is 96 bytes" 96 "$(wc -c <"$T/sig.ecdsa384.rs" | tr -d ' ')"
if it_rs_to_der "$T/sig.ecdsa384.rs" "$T/sig.ecdsa384.der"; then
    check "openssl pkeyutl verifies the P-384 signature" openssl pkeyutl -verify -pubin \
        -inkey "$T/ec384.pem" -in "$T/data.sha384" -sigfile "$T/sig.ecdsa384.der"
else
    fail "openssl pkeyutl verifies the P-384 signature" "cannot convert the signature"
fi

check "pkcs11-tool --verify of an ECDSA-SHA256 signature (module verification)" \
    "${P11[@]}" "${TOK[@]}" --verify -m ECDSA-SHA256 --id 02 -i "$T/data" \
    --signature-file "$T/sig.ecdsa256.rs"
check_out "the module accepts the signature" 'Signature is valid'
printf 'x' >>"$T/data.tampered"
cat "$T/data" >>"$T/data.tampered"
# pkcs11-tool --verify reports CKR_SIGNATURE_INVALID as "Invalid signature".
it_run "${P11[@]}" "${TOK[@]}" --verify -m ECDSA-SHA256 --id 02 -i "$T/data.tampered" \
    --signature-file "$T/sig.ecdsa256.rs" || true
check_out "the module rejects the signature over other data" '^Invalid signature'
check_no_out "... and does not call it valid" 'Signature is valid'


# ---- decryption of openssl ciphertexts --------------------------------------------
it_oaep_decrypts "on the card"

check "openssl encrypts with RSA PKCS#1 v1.5" openssl pkeyutl -encrypt -pubin -inkey "$T/rsa.pem" \
    -pkeyopt rsa_padding_mode:pkcs1 -in "$T/secret" -out "$T/ct.pkcs1"
check "decrypt RSA-PKCS on the card" "${P11[@]}" "${USER[@]}" --decrypt -m RSA-PKCS --id 01 \
    -i "$T/ct.pkcs1" -o "$T/pt.pkcs1"
check_cmp "PKCS#1 v1.5 plaintext equals the original" "$T/secret" "$T/pt.pkcs1"

# ---- ECDH against an openssl key ----------------------------------------------------
check "openssl makes a P-256 peer key" openssl genpkey -algorithm EC \
    -pkeyopt ec_paramgen_curve:P-256 -out "$T/peer.key"
check "peer public key as DER" openssl pkey -in "$T/peer.key" -pubout -outform DER -out "$T/peer.der"
check "derive ECDH1 (CKD_NULL) on the card" "${P11[@]}" "${USER[@]}" --derive -m ECDH1-DERIVE \
    --id 02 -i "$T/peer.der" -o "$T/ecdh.card"
check "openssl derives the same secret from the peer side" openssl pkeyutl -derive \
    -inkey "$T/peer.key" -peerkey "$T/ec256.pem" -out "$T/ecdh.openssl"
check_eq "shared secret is 32 bytes" 32 "$(wc -c <"$T/ecdh.card" 2>/dev/null | tr -d ' ')"
check_cmp "card and openssl shared secrets are equal" "$T/ecdh.openssl" "$T/ecdh.card"

# ---- digests and random ---------------------------------------------------------------
check "hash SHA256 in the module" "${P11[@]}" "${TOK[@]}" --hash -m SHA256 -i "$T/data" \
    -o "$T/data.p11sha256"
check_cmp "module SHA-256 equals openssl's" "$T/data.sha256" "$T/data.p11sha256"
check "generate 48 random bytes" "${P11[@]}" "${TOK[@]}" --generate-random 48 -o "$T/random"
check_eq "48 random bytes returned" 48 "$(wc -c <"$T/random" 2>/dev/null | tr -d ' ')"

# ---- certificate and data objects ----------------------------------------------------
check "openssl makes a certificate to store" openssl req -x509 -newkey ec \
    -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/extra.key" -out "$T/extra.pem" -days 2 \
    -subj "/CN=sks stored certificate"
openssl x509 -in "$T/extra.pem" -outform DER -out "$T/extra.der"
check "write-object a certificate (--type cert --id 0a)" "${P11[@]}" "${USER[@]}" \
    --write-object "$T/extra.der" --type cert --id 0a --label extra-cert
check "-O lists it" "${P11[@]}" "${USER[@]}" -O
has_object "the stored certificate is listed with its label and id" 'cert;extra-cert;0a;.*'
check "read-object the certificate back" "${P11[@]}" "${TOK[@]}" --read-object --type cert \
    --id 0a -o "$T/extra.back"
check_cmp "the certificate read back is byte-identical" "$T/extra.der" "$T/extra.back"

printf 'SKS data object contents\n' >"$T/notes"
check "write-object a data object" "${P11[@]}" "${USER[@]}" --write-object "$T/notes" \
    --type data --label notes
check "read-object the data object back" "${P11[@]}" "${USER[@]}" --read-object --type data \
    --label notes -o "$T/notes.back"
check_cmp "the data object read back is byte-identical" "$T/notes" "$T/notes.back"

# A new process sees the stored objects: they live on the card, not in the module.
check "-O in a new process" "${P11[@]}" "${USER[@]}" -O
has_object "the stored certificate persists" 'cert;extra-cert;0a;.*'
has_object "the data object persists" 'data;notes;.*'

check "delete-object the certificate" "${P11[@]}" "${USER[@]}" --delete-object --type cert --id 0a
check "delete-object the data object" "${P11[@]}" "${USER[@]}" --delete-object --type data \
    --label notes
check "-O after deletion" "${P11[@]}" "${USER[@]}" -O
no_object "the stored certificate is gone" 'cert;extra-cert;.*'
no_object "the data object is gone" 'data;notes;.*'
has_object "the key pairs are untouched" 'privkey RSA;rsa2048;01;.*'

# ---- PIN change ---------------------------------------------------------------------
P2=654321
check "change-pin" "${P11[@]}" "${TOK[@]}" --login --pin "$IT_PIN" --change-pin --new-pin "$P2"
check_fail "the old PIN no longer works" 'CKR_PIN_INCORRECT' "${P11[@]}" "${TOK[@]}" --login \
    --pin "$IT_PIN" -O
check "the new PIN works" "${P11[@]}" "${TOK[@]}" --login --pin "$P2" -O
has_object "the keys are visible with the new PIN" 'privkey EC;ec256;02;.*'
check_fail "a new PIN shorter than the policy's minimum is refused" 'CKR_PIN_LEN_RANGE' \
    "${P11[@]}" "${TOK[@]}" --login --pin "$P2" --change-pin --new-pin 12
# C_SetPIN in a session that is not logged in changes the user PIN; pkcs11-tool
# passes --so-pin as the old PIN when it is given and logs in only with --login
# or --pin, so this reaches C_SetPIN(old = 999999) without a login.
check_fail "C_SetPIN with a wrong old PIN is refused" 'CKR_PIN_INCORRECT' \
    "${P11[@]}" "${TOK[@]}" --change-pin --so-pin 999999 --new-pin 111111
check "the right PIN still works after the refused change" "${P11[@]}" "${TOK[@]}" --login \
    --pin "$P2" -O
check "change the PIN back" "${P11[@]}" "${TOK[@]}" --login --pin "$P2" --change-pin \
    --new-pin "$IT_PIN"

# ---- PIN blocking and unblocking with the SO PIN (the PUK) ----------------------------
check_fail "wrong PIN, first try" 'CKR_PIN_INCORRECT' "${P11[@]}" "${TOK[@]}" --login --pin 000000 -O
check "-L after one wrong PIN" "${P11[@]}" -L
check_out "token flags show 'user PIN count low'" 'user PIN count low'
check_fail "wrong PIN, second try" 'CKR_PIN_INCORRECT' "${P11[@]}" "${TOK[@]}" --login --pin 000000 -O
check "-L after two wrong PINs" "${P11[@]}" -L
check_out "token flags show 'final user PIN try'" 'final user PIN try'
check_fail "wrong PIN, third try" 'CKR_PIN_INCORRECT|CKR_PIN_LOCKED' "${P11[@]}" "${TOK[@]}" \
    --login --pin 000000 -O
check_fail "the right PIN is now refused with CKR_PIN_LOCKED" 'CKR_PIN_LOCKED' \
    "${P11[@]}" "${TOK[@]}" --login --pin "$IT_PIN" -O
check "-L with the PIN blocked" "${P11[@]}" -L
check_out "token flags show 'user PIN locked'" 'user PIN locked'
check_fail "a wrong SO PIN is refused" 'CKR_PIN_INCORRECT' "${P11[@]}" "${TOK[@]}" --login \
    --login-type so --so-pin 11111111 --init-pin --pin 222222
check "unblock: init-pin as SO sets a new PIN" "${P11[@]}" "${TOK[@]}" --login --login-type so \
    --so-pin "$IT_SO_PIN" --init-pin --pin "$P2"
check "login works again with the new PIN" "${P11[@]}" "${TOK[@]}" --login --pin "$P2" -O
has_object "the keys survived the unblock" 'privkey RSA;rsa2048;01;.*'
check "-L after the unblock" "${P11[@]}" -L
check_no_out "no PIN warning flags remain" 'user PIN (locked|count low)|final user PIN try'
check "set the usual PIN again" "${P11[@]}" "${TOK[@]}" --login --pin "$P2" --change-pin \
    --new-pin "$IT_PIN"

# ---- pkcs11-tool's own tests -----------------------------------------------------------
check "pkcs11-tool --test" "${P11[@]}" "${USER[@]}" --test
check_out "--test reports no errors" '^No errors'
check_out "--test ran its signature tests (it needs a CKF_HW sign mechanism)" \
    '^Signatures \(currently only for RSA\)'
check_no_out "--test reports no ERR lines" 'ERR:'
# --test-ec generates an EC pair with the given ID, reads CKA_EC_PARAMS and
# CKA_EC_POINT, sets a 20-byte CKA_ID on both halves, signs (checking the
# CKR_BUFFER_TOO_SMALL convention) and verifies, then destroys the pair.
check "pkcs11-tool --test-ec" "${P11[@]}" "${USER[@]}" --session-rw --test-ec --id 0e --key-type EC:prime256v1 \
    --label test-ec
check_no_out "--test-ec reports no ERR lines" 'ERR:'
check_out "--test-ec ran to its end (key pair deleted again)" 'Deleting the private and the public key'
check "-O after --test-ec" "${P11[@]}" "${USER[@]}" -O
no_object "the --test-ec key pair is gone" '[a-z]+ [^;]*;test-ec;.*'
check "pkcs11-tool --test-fork" "${P11[@]}" --test-fork -L
check_out "--test-fork ran C_Initialize in the child" 'C_Initialize in forked child'

# ---- the free slot ------------------------------------------------------------------
# The free slot's token is uninitialised: key generation there is refused
# (it used to succeed with handles that did not exist, making a key without
# PIN on the side).
check "-L to find the free slot" "${P11[@]}" -L
free=$(awk '/^Slot [0-9]+ \(0x[0-9a-f]+\)/ { id = $3 } /token state: +uninitialized/ { gsub(/[():]/, "", id); print id; exit }' "$IT_OUT")
if [ -n "$free" ]; then
    pass "the free slot is listed ($free)"
    rc=0
    it_run "${P11[@]}" --slot "$free" --keypairgen --key-type EC:prime256v1 --label on-free-slot || rc=$?
    if [ "$rc" -ne 0 ] && grep -q 'CKR_TOKEN_WRITE_PROTECTED' "$IT_OUT"; then
        pass "keypairgen on the free slot is refused with CKR_TOKEN_WRITE_PROTECTED"
    else
        fail "keypairgen on the free slot is refused with CKR_TOKEN_WRITE_PROTECTED" \
            "status $rc:"
        it_show_output
    fi
else
    fail "the free slot is listed" "no uninitialised token in -L"
fi

# ---- re-initialising a token with its SO PIN ------------------------------------------
# C_InitToken on an existing token (the card's resetPINPolicy under the PUK):
# its keys go, its label changes, and the SO must set the user PIN again.
OLD=(--token-label reinit-old)
if [ -n "$free" ]; then
    check "init-token 'reinit-old' on the free slot" \
        "${P11[@]}" --slot "$free" --init-token --label reinit-old --so-pin "$IT_SO_PIN"
    check "init-pin as SO on 'reinit-old'" "${P11[@]}" "${OLD[@]}" --login --login-type so \
        --so-pin "$IT_SO_PIN" --init-pin --pin "$IT_PIN"
    check "keypairgen on 'reinit-old'" "${P11[@]}" "${OLD[@]}" --login --pin "$IT_PIN" \
        --keypairgen --key-type EC:prime256v1 --id 21 --label old-key
    check "-O on 'reinit-old'" "${P11[@]}" "${OLD[@]}" --login --pin "$IT_PIN" -O
    has_object "'reinit-old' holds its key" 'privkey EC;old-key;21;.*'
    check_fail "init-token with a wrong SO PIN is refused" 'CKR_PIN_INCORRECT' \
        "${P11[@]}" "${OLD[@]}" --init-token --label reinit-new --so-pin 11111111
    check "init-token re-initialises 'reinit-old' as 'reinit-new'" \
        "${P11[@]}" "${OLD[@]}" --init-token --label reinit-new --so-pin "$IT_SO_PIN"
    check "-L after the re-initialisation" "${P11[@]}" -L
    check_out "the token shows as 'reinit-new'" 'token label +: reinit-new$'
    check_no_out "no token is labelled 'reinit-old' any more" 'token label +: reinit-old$'
    flags=$(awk '$0 ~ "token label +: reinit-new$" { f = 1 } f && /token flags/ { print; exit }' "$IT_OUT")
    case $flags in
    *"PIN initialized"*) fail "the user PIN of 'reinit-new' is not initialised" "flags: $flags" ;;
    *) pass "the user PIN of 'reinit-new' is not initialised" ;;
    esac
    check "init-pin as SO on 'reinit-new'" "${P11[@]}" --token-label reinit-new --login \
        --login-type so --so-pin "$IT_SO_PIN" --init-pin --pin "$IT_PIN"
    check "-O on 'reinit-new'" "${P11[@]}" --token-label reinit-new --login --pin "$IT_PIN" -O
    check_eq "'reinit-new' holds no objects" 0 "$(objects | wc -l)"
    check "-O on $IT_TOKEN after the re-initialisation" "${P11[@]}" "${USER[@]}" -O
    has_object "the other token keeps its keys" 'privkey RSA;rsa2048;01;.*'
fi

it_finish
