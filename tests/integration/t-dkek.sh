#!/bin/bash
# t-dkek.sh - key backup, restore and cloning under a DKEK assembled from
# shares (docs/dkek.md), with sks-tool, pkcs11-tool and the PKCS#11 driver
# dkek-p11.c on embedded cards, then through pcscd + sks-card:
#   - share files: a typed password, a password split 2-of-3 among
#     custodians (any 2 open it, 1 does not, a share of another split fails),
#     and a SmartCard-HSM "Salted__" file made by `openssl enc -md md5`,
#     whose known share gives a KCV recomputed here with openssl dgst;
#   - card A, 3 shares: keys made with and without backup permission; the
#     backup-allowed ones wrapped (sks-tool, pkcs11-tool --wrap, C_WrapKey),
#     deleted, restored (sks-tool, pkcs11-tool --unwrap, C_UnwrapKey) and
#     signing again for the original public key, certificate included;
#   - card A also has a key without PIN (on the no-PIN token, which
#     nopin-key.c brings up) that allows backup;
#   - card B with the same shares and a token with a PIN made as on card A
#     (it_make_token) restores A's backups onto that token, logged in
#     (cloning): its signatures verify with A's certificate. A backup of a
#     key with a PIN is refused on B's no-PIN token (sks-tool --token '',
#     C_UnwrapKey and pkcs11-tool --unwrap: CKR_USER_NOT_LOGGED_IN) and
#     nothing is created; A's key without PIN restores onto both tokens;
#   - card C with another third share refuses them (KCV), a backup with one
#     flipped bit is refused everywhere, a key without backup permission is
#     never wrapped, an incomplete DKEK neither wraps nor unwraps.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pcscd-env.sh
. "$here/pcscd-env.sh"
it_setup dkek
T=$IT_TMP
TOOL=${SKS_IT_SKS_TOOL:?run through run-all.sh}
DRV=${SKS_IT_DKEK_P11:?run through run-all.sh}
NOPIN_KEY=${SKS_IT_NOPIN_KEY:?run through run-all.sh}
NOPIN_TOKEN="SKS (no PIN)" # the token of the keys without PIN
MECH=0xD34B0020 # CKM_VENDOR_SKS_DKEK_WRAP
DKEK_ID=444b454b # the DKEK object's CKA_ID, "DKEK"
CKR_KEY_UNEXTRACTABLE=0x6A
CKR_USER_NOT_LOGGED_IN=0x101
CKR_WRAPPED_KEY_INVALID=0x110
CKR_DKEK_INCOMPLETE=0xD34B0101
CKR_DKEK_MISMATCH=0xD34B0102
echo "sample data for the signatures" >"$T/data"

# ---- helpers ---------------------------------------------------------------------------

# A card of its own: configuration file and state directory under $T/NAME.
card_conf() { # NAME: prints the configuration file
    mkdir -p "$T/$1"
    it_write_conf "$T/$1/conf" "$T/$1/state"
    echo "$T/$1/conf"
}

# pkcs11-tool (PT: the PIN token, logged in; NP: the no-PIN token), the driver and
# sks-tool on card NAME ($CONF, $CARD, $ISSUER set by use_card).
use_card() { # NAME
    CONF="$T/$1/conf"
    CARD="$T/$1/state/card"
    ISSUER="$T/$1/state/issuer"
    PT=(env SKS_PKCS11_CONF="$CONF" pkcs11-tool --module "$SKS_IT_MODULE" --token-label "$IT_TOKEN"
        --login --pin "$IT_PIN")
    NP=(env SKS_PKCS11_CONF="$CONF" pkcs11-tool --module "$SKS_IT_MODULE" --token-label
        "$NOPIN_TOKEN")
    DP=(env SKS_PKCS11_CONF="$CONF" "$DRV")
}

# A fresh card NAME in use (card_conf, use_card, SKS_PKCS11_CONF), it_mark, its token made.
new_card() { # NAME
    card_conf "$1" >/dev/null
    use_card "$1"
    export SKS_PKCS11_CONF=$CONF
    it_mark
    it_make_token "$IT_TOKEN"
}

# A DKEK of three shares on the card in DIR: share 1 (typed password),
# share 2 (the custodian shares in file $T/C2), then share S3 (password file
# $T/PW3); the last output is sks-tool's, with the KCV.
dkek_of_shares() { # NAME DIR C2 S3 PW3
    check "card $1: --initialize --dkek-shares 3" "$TOOL" -d "$2" --initialize --dkek-shares 3
    check "card $1: share 1" "$TOOL" -d "$2" -I "$T/s1.pbe" --password-fd 3 3<"$T/pw1"
    check "card $1: share 2 with the custodian shares of $3" \
        "$TOOL" -d "$2" -I "$T/s2.pbe" --password-fd 3 3<"$T/$3"
    check "card $1: $4 as the third share" "$TOOL" -d "$2" -I "$T/$4" --password-fd 3 3<"$T/$5"
}

kcv_of_status() { # the KCV in sks-tool's last output
    sed -n 's/^DKEK key check value: \([0-9A-F]*\)$/\1/p' "$IT_OUT"
}

# Sign the data with key ID on the current card and verify with PEM (openssl).
signs_for() { # DESC ID MECH PEM
    check "$1: sign with key $2" "${PT[@]}" --sign -m "$3" --id "$2" -i "$T/data" \
        -o "$T/sig" --signature-format openssl
    check "$1: the signature verifies with the original public key" \
        openssl dgst -sha256 -verify "$4" -signature "$T/sig" "$T/data"
}

flip_bit() { # IN OUT OFFSET: OUT is IN with bit 0 of byte OFFSET flipped
    cp "$1" "$2"
    local b
    b=$(od -An -tu1 -j "$3" -N1 "$1" | tr -d ' ')
    # shellcheck disable=SC2059 # the format is the new byte as an octal escape
    printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$2" bs=1 seek="$3" conv=notrunc 2>/dev/null
}

# ---- share files ---------------------------------------------------------------------
it_mark
printf 'custodian-one-password\n' >"$T/pw1"
check "create share 1 (a typed password, read from --password-fd)" \
    "$TOOL" --create-dkek-share "$T/s1.pbe" --password-fd 3 3<"$T/pw1"
check_out "share 1: progress is shown while deriving" 'scrypt\) \.* ?done'
check "create share 2 (password split 2-of-3)" \
    "$TOOL" --create-dkek-share "$T/s2.pbe" --pwd-shares-threshold 2 --pwd-shares-total 3
awk '/^Password share [0-9] of 3:/ {print $NF}' "$IT_OUT" >"$T/custodians"
check_eq "three custodian shares shown, once each" 3 "$(sort -u "$T/custodians" | wc -l)"
check_fail "a share file is not overwritten without --force" 'exists' \
    "$TOOL" --create-dkek-share "$T/s2.pbe" --password-fd 3 3<"$T/pw1"
openssl rand 32 >"$T/raw3"
check "create share 3 as a SmartCard-HSM file (openssl enc -aes-256-cbc -md md5)" \
    openssl enc -aes-256-cbc -md md5 -pass pass:salted-password -in "$T/raw3" -out "$T/s3.bin"
printf 'salted-password\n' >"$T/pw3"
printf 'another-custodian-password\n' >"$T/pw4"
check "create share 4 (for card C)" \
    "$TOOL" --create-dkek-share "$T/s4.pbe" --password-fd 3 3<"$T/pw4"
check "create another split share (its custodian shares do not fit share 2)" \
    "$TOOL" --create-dkek-share "$T/s5.pbe" --pwd-shares-threshold 2 --pwd-shares-total 3
awk '/^Password share [0-9] of 3:/ {print $NF}' "$IT_OUT" >"$T/other-custodians"
it_gate "the share files"
sed -n '1p;3p' "$T/custodians" >"$T/c13"
sed -n '2p;3p' "$T/custodians" >"$T/c23"
sed -n '1p' "$T/custodians" >"$T/c1"
{ sed -n '1p' "$T/custodians"; sed -n '2p' "$T/other-custodians"; } >"$T/c1x"

# ---- card D: the KCV of a known share, and an incomplete DKEK ----------------------------
new_card D
check "card D: --initialize --dkek-shares 1" "$TOOL" -d "$CARD" --initialize --dkek-shares 1
check_out "card D: one share outstanding" 'import pending, 1 share\(s\) still missing'
check "card D: a key with backup allowed" "${DP[@]}" keygen "$SKS_IT_MODULE" "$IT_TOKEN" \
    "$IT_PIN" 0d dkey ec256 backup
it_gate "card D"
check_fail "card D: no backup while shares are outstanding (CKR_VENDOR_SKS_DKEK_INCOMPLETE)" \
    "rv=$CKR_DKEK_INCOMPLETE" "${DP[@]}" wrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" 0d "$T/d.bin"
check_fail "card D: sks-tool --wrap-key refuses too" 'DKEK' \
    "$TOOL" -d "$CARD" --wrap-key "$T/d.bin" --id 0d --pin "$IT_PIN"
check_fail "card D: a wrong password does not open the Salted__ file" 'wrong password' \
    "$TOOL" -d "$CARD" --import-dkek-share "$T/s3.bin" --password-fd 3 3<"$T/pw1"
check "card D: import the Salted__ share" \
    "$TOOL" -d "$CARD" --import-dkek-share "$T/s3.bin" --password-fd 3 3<"$T/pw3"
want=$(openssl dgst -sha256 -binary "$T/raw3" | od -An -tx1 | tr -d ' \n' | cut -c1-16 |
    tr a-f A-F)
check_eq "card D: KCV = first 8 bytes of SHA-256 of the share (openssl dgst)" "$want" \
    "$(kcv_of_status)"
check "card D: the DKEK object shows it (CKA_VENDOR_SKS_DKEK_*)" \
    "${DP[@]}" status "$SKS_IT_MODULE" "$IT_TOKEN"
check_out "card D: shares 1, none outstanding, the same KCV" "^shares 1 outstanding 0 kcv $want\$"
check "card D: now the key is wrapped" \
    "${DP[@]}" wrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" 0d "$T/d.bin"
check_eq "card D: the backup starts with the KCV" "$want" \
    "$(od -An -tx1 -N8 "$T/d.bin" | tr -d ' \n' | tr a-f A-F)"

# ---- card A: three shares, backup and restore ------------------------------------------
new_card A
check "card A: --initialize --dkek-shares 3" "$TOOL" -d "$CARD" -X -s 3
check_out "card A: three shares outstanding" 'still missing'
check "card A: import share 1" "$TOOL" -d "$CARD" -I "$T/s1.pbe" --password-fd 3 3<"$T/pw1"
check_out "card A: two shares outstanding" 'import pending, 2 share\(s\) still missing'
check_fail "card A: share 2 with one custodian share only" 'not enough password shares' \
    "$TOOL" -d "$CARD" -I "$T/s2.pbe" --password-fd 3 3<"$T/c1"
check_fail "card A: share 2 with a custodian share of another split" 'wrong password' \
    "$TOOL" -d "$CARD" -I "$T/s2.pbe" --password-fd 3 3<"$T/c1x"
check "card A: import share 2 with custodian shares 1 and 3" \
    "$TOOL" -d "$CARD" -I "$T/s2.pbe" --password-fd 3 3<"$T/c13"
check_out "card A: one share outstanding" 'import pending, 1 share\(s\) still missing'
check "card A: import share 3 (Salted__)" "$TOOL" -d "$CARD" -I "$T/s3.bin" --password-fd 3 3<"$T/pw3"
kcv_a=$(kcv_of_status)
check_out "card A: complete, with a key check value" '^DKEK key check value: [0-9A-F]{16}$'
check_fail "card A: no share is taken once complete" 'takes no DKEK share' \
    "$TOOL" -d "$CARD" -I "$T/s4.pbe" --password-fd 3 3<"$T/pw4"
check "card A: sks-tool with no verb shows the status" "$TOOL" -d "$CARD"
check_out "card A: ... shares and KCV" "^DKEK key check value: $kcv_a\$"
check "card A: a P-256 key with backup allowed" "${DP[@]}" keygen "$SKS_IT_MODULE" "$IT_TOKEN" \
    "$IT_PIN" 01 mail ec256 backup
check_out "card A: CKA_VENDOR_SKS_BACKUP_ALLOWED and CKA_EXTRACTABLE true" \
    'backup_allowed=1 extractable=1'
check "card A: an RSA-2048 key with backup allowed" "${DP[@]}" keygen "$SKS_IT_MODULE" \
    "$IT_TOKEN" "$IT_PIN" 02 signing rsa2048 backup
check "card A: a key without backup permission" "${DP[@]}" keygen "$SKS_IT_MODULE" \
    "$IT_TOKEN" "$IT_PIN" 03 nobackup ec256 nobackup
check_out "card A: ... CKA_VENDOR_SKS_BACKUP_ALLOWED false" 'backup_allowed=0 extractable=0'
it_pubkey 01 "$T/pub01.pem"
it_pubkey 02 "$T/pub02.pem"
check "card A: key 01's certificate" "${PT[@]}" --read-object --type cert --id 01 -o "$T/cert01.der"
it_gate "card A with its DKEK and keys"

check_fail "card A: no new DKEK while keys allow backup" 'cannot be replaced' \
    "$TOOL" -d "$CARD" --initialize --dkek-shares 1
check "card A: pkcs11-tool lists the DKEK object" "${PT[@]}" -O --type secrkey
check_out "card A: ... labelled DKEK, wrap and unwrap" 'label: +DKEK'
check_out "card A: ... and the backup view of key 01" 'label: +mail'
check_no_out "card A: ... but none of the key without permission" 'label: +nobackup'

# Backups, three ways.
check "card A: sks-tool --wrap-key --id 01" "$TOOL" -d "$CARD" --wrap-key "$T/a01.bin" --id 01 \
    --pin "$IT_PIN"
check_out "card A: ... under the DKEK's KCV" "key check value $kcv_a"
check_eq "card A: the file starts with the KCV" "$kcv_a" \
    "$(od -An -tx1 -N8 "$T/a01.bin" | tr -d ' \n' | tr a-f A-F)"
check_fail "card A: --wrap-key does not overwrite a file" 'exists' \
    "$TOOL" -d "$CARD" --wrap-key "$T/a01.bin" --id 01 --pin "$IT_PIN"
check "card A: pkcs11-tool --wrap (DKEK --id $DKEK_ID, key --application-id 01)" \
    "${PT[@]}" --wrap -m "$MECH" --id "$DKEK_ID" --application-id 01 -o "$T/a01-p11.bin"
check "card A: C_WrapKey of the RSA key" \
    "${DP[@]}" wrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" 02 "$T/a02.bin"
check_fail "card A: C_WrapKey of the key without permission: CKR_KEY_UNEXTRACTABLE" \
    "rv=$CKR_KEY_UNEXTRACTABLE" "${DP[@]}" wrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" 03 "$T/x.bin"
check_fail "card A: sks-tool --wrap-key of it" 'does not allow backup' \
    "$TOOL" -d "$CARD" --wrap-key "$T/x.bin" --id 03 --pin "$IT_PIN"
check_fail "card A: pkcs11-tool --wrap of it (no backup view)" 'not found' \
    "${PT[@]}" --wrap -m "$MECH" --id "$DKEK_ID" --application-id 03 -o "$T/x.bin"
check "card A: ... and nothing was written" test ! -e "$T/x.bin"

# Delete and restore, each way; the key signs again for its public key.
check_fail "card A: a key still on the card is not restored twice (its ID is taken)" \
    'already has this ID' \
    "$TOOL" -d "$CARD" --unwrap-key "$T/a01.bin" --pin "$IT_PIN"
check "card A: delete key 01" "${PT[@]}" --delete-object --type privkey --id 01
check "card A: sks-tool --unwrap-key" "$TOOL" -d "$CARD" --unwrap-key "$T/a01.bin" --pin "$IT_PIN"
check_out "card A: ... restored" 'Key restored as key'
signs_for "card A, restored by sks-tool" 01 ECDSA-SHA256 "$T/pub01.pem"
check "card A: its certificate came back" "${PT[@]}" --read-object --type cert --id 01 \
    -o "$T/cert01-restored.der"
check_cmp "card A: ... the same certificate" "$T/cert01.der" "$T/cert01-restored.der"
check "card A: delete key 01 again" "${PT[@]}" --delete-object --type privkey --id 01
check "card A: pkcs11-tool --unwrap" "${PT[@]}" --unwrap -m "$MECH" --id "$DKEK_ID" \
    -i "$T/a01-p11.bin" --application-id 01 --application-label mail
signs_for "card A, restored by pkcs11-tool" 01 ECDSA-SHA256 "$T/pub01.pem"
check "card A: delete the RSA key" "${PT[@]}" --delete-object --type privkey --id 02
check "card A: C_UnwrapKey of the RSA key" \
    "${DP[@]}" unwrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" "$T/a02.bin"
check_out "card A: ... restored with its ID" '^restored 02$'
signs_for "card A, RSA restored by C_UnwrapKey" 02 SHA256-RSA-PKCS "$T/pub02.pem"

# Altered backups change nothing.
flip_bit "$T/a01.bin" "$T/a01-flipped.bin" 300
check "card A: --force restore over the key itself" \
    "$TOOL" -d "$CARD" --unwrap-key "$T/a01.bin" --pin "$IT_PIN" --force
check_out "card A: ... replaced" 'Replaced key'
check_fail "card A: a backup with one flipped bit (sks-tool, --force)" 'altered or damaged' \
    "$TOOL" -d "$CARD" --unwrap-key "$T/a01-flipped.bin" --pin "$IT_PIN" --force
signs_for "card A, after the refused --force restore the key is still there" 01 ECDSA-SHA256 \
    "$T/pub01.pem"
check "card A: delete key 01 for the C_UnwrapKey check" "${PT[@]}" --delete-object \
    --type privkey --id 01
check_fail "card A: C_UnwrapKey of the flipped backup: CKR_WRAPPED_KEY_INVALID" \
    "rv=$CKR_WRAPPED_KEY_INVALID" "${DP[@]}" unwrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" \
    "$T/a01-flipped.bin"
check_fail "card A: pkcs11-tool --unwrap of it" 'CKR_WRAPPED_KEY_INVALID' \
    "${PT[@]}" --unwrap -m "$MECH" --id "$DKEK_ID" -i "$T/a01-flipped.bin"
check "card A: no key 01 was created" "$TOOL" -d "$CARD" --list-keys
check_no_out "card A: ... (--list-keys)" 'ID: +01$'

# A key without PIN that allows backup, made on the no-PIN token without a login (the
# token exists once the card holds a key without PIN: nopin-key puts the first one on).
it_mark
check "card A: nopin-key: a first key without PIN (id 0a)" \
    "$NOPIN_KEY" "$CARD" "$ISSUER" ec256 0a nopin-first
check "card A: a P-256 key with backup allowed on the no-PIN token" \
    "${DP[@]}" keygen "$SKS_IT_MODULE" "$NOPIN_TOKEN" - 0c nopin ec256 backup
check "card A: its public key" "${NP[@]}" --read-object --type pubkey --id 0c -o "$T/pub0c.der"
check "card A: ... as PEM" openssl pkey -pubin -inform DER -in "$T/pub0c.der" -out "$T/pub0c.pem"
check "card A: C_WrapKey of it, nobody logged in" \
    "${DP[@]}" wrap "$SKS_IT_MODULE" "$NOPIN_TOKEN" - 0c "$T/a0c.bin"
it_gate "card A's key without PIN and its backup"

# ---- card B: the same shares, clones of A's keys --------------------------------------
# new_card makes B's token with a PIN as it made A's (it_make_token: sks-it, PIN $IT_PIN);
# nopin-key gives B a no-PIN token too.
new_card B
dkek_of_shares B "$CARD" c23 s3.bin pw3
check_eq "card B: the same KCV as card A" "$kcv_a" "$(kcv_of_status)"
check "card B: nopin-key: a key without PIN (id 0b), so that B has a no-PIN token" \
    "$NOPIN_KEY" "$CARD" "$ISSUER" ec256 0b nopin-b
it_gate "card B with A's DKEK"

# A's key 01 had a PIN: it never becomes a key without PIN on B.
check_fail "card B: sks-tool --unwrap-key --token '' of A's key with a PIN is refused" \
    "the backup is of a key with a PIN \\(token \"$IT_TOKEN\"\\)" \
    "$TOOL" -d "$CARD" --unwrap-key "$T/a01.bin" --token ''
check_fail "card B: C_UnwrapKey of it on the no-PIN token: CKR_USER_NOT_LOGGED_IN" \
    "rv=$CKR_USER_NOT_LOGGED_IN" "${DP[@]}" unwrap "$SKS_IT_MODULE" "$NOPIN_TOKEN" - "$T/a01.bin"
check "card B: ... the module's log says why" grep -q 'not on the no-PIN token' "$IT_LOG"
check_fail "card B: pkcs11-tool --unwrap of it on the no-PIN token: CKR_USER_NOT_LOGGED_IN" \
    'CKR_USER_NOT_LOGGED_IN' "${NP[@]}" --unwrap -m "$MECH" --id "$DKEK_ID" -i "$T/a01-p11.bin"
check "card B: no key 01 was created" "$TOOL" -d "$CARD" --list-keys
check_no_out "card B: ... (--list-keys)" 'ID: +01$'

# Onto B's token with a PIN, its PIN given: the clones.
check "card B: restore A's P-256 backup (sks-tool)" \
    "$TOOL" -d "$CARD" --unwrap-key "$T/a01.bin" --pin "$IT_PIN"
openssl x509 -inform DER -in "$T/cert01.der" -pubkey -noout >"$T/cert01-pub.pem"
signs_for "card B, clone of A's key" 01 ECDSA-SHA256 "$T/cert01-pub.pem"
check "card B: restore A's RSA backup (C_UnwrapKey)" \
    "${DP[@]}" unwrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" "$T/a02.bin"
signs_for "card B, clone of A's RSA key" 02 SHA256-RSA-PKCS "$T/pub02.pem"

# A's key without PIN: onto B's no-PIN token, then (--force) under B's token with a PIN.
check "card B: C_UnwrapKey of A's key without PIN on the no-PIN token, nobody logged in" \
    "${DP[@]}" unwrap "$SKS_IT_MODULE" "$NOPIN_TOKEN" - "$T/a0c.bin"
check_out "card B: ... restored with its ID" '^restored 0c$'
check "card B: it signs without a PIN" "${NP[@]}" --sign -m ECDSA-SHA256 --id 0c -i "$T/data" \
    -o "$T/sig" --signature-format openssl
check "card B: ... for A's public key" \
    openssl dgst -sha256 -verify "$T/pub0c.pem" -signature "$T/sig" "$T/data"
check "card B: sks-tool --unwrap-key of it under token $IT_TOKEN (--force replaces it)" \
    "$TOOL" -d "$CARD" --unwrap-key "$T/a0c.bin" --token "$IT_TOKEN" --pin "$IT_PIN" --force
check_out "card B: ... replaced" 'Replaced key'
signs_for "card B, A's key without PIN now under B's PIN" 0c ECDSA-SHA256 "$T/pub0c.pem"
check "card B: the no-PIN token lists its private keys" "${NP[@]}" -O --type privkey
check_no_out "card B: ... key 0c is no longer one of them" 'ID: +0c$'

# ---- card C: another DKEK ----------------------------------------------------------------
new_card C
dkek_of_shares C "$CARD" c13 s4.pbe pw4 # share 4 instead of share 3
kcv_c=$(kcv_of_status)
it_gate "card C"
check "card C: another KCV than card A" test "$kcv_c" != "$kcv_a"
check_fail "card C: sks-tool refuses A's backup, naming both KCVs" \
    "another DKEK: its key check value is $kcv_a, the card's is $kcv_c" \
    "$TOOL" -d "$CARD" --unwrap-key "$T/a01.bin" --pin "$IT_PIN"
check_fail "card C: C_UnwrapKey: CKR_VENDOR_SKS_DKEK_MISMATCH" "rv=$CKR_DKEK_MISMATCH" \
    "${DP[@]}" unwrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" "$T/a01.bin"
check "card C: no key was created" "$TOOL" -d "$CARD" --list-keys
check_out "card C: ... (--list-keys)" '^No keys\.$'

# ---- card P: the same through pcscd and sks-card -------------------------------------------
it_mark
pcscd_start_or_end "the pcscd part"
SKS_CARD=$SKS_IT_PREFIX/sbin/sks-card
SKS_CARD_LOG="$T/sks-card.log"
PCARD="$T/P/card"
mkdir -p "$T/P"
sks_card_start_checked "$PCARD" "card P: sks-card serves a fresh card through pcscd" \
    "sks-card behind pcscd"
it_write_conf "$T/P/conf" "$T/P/state" "transport = pcsc" \
    "manufacturer_ca = $PCARD/manufacturer/ca-cert.pem"
export SKS_PKCS11_CONF=$T/P/conf
P11=("${IN_PCSCD[@]}" pkcs11-tool --module "$SKS_IT_MODULE")
PT=("${P11[@]}" --token-label "$IT_TOKEN" --login --pin "$IT_PIN")
DP=("${IN_PCSCD[@]}" "$DRV")
it_make_token "$IT_TOKEN"
dkek_of_shares P "$PCARD" c23 s3.bin pw3 # sks-tool on the served card
check_eq "card P: card A's KCV" "$kcv_a" "$(kcv_of_status)"
check "card P: the DKEK object through pcscd" "${DP[@]}" status "$SKS_IT_MODULE" "$IT_TOKEN"
check_out "card P: ... complete, A's KCV" "^shares 3 outstanding 0 kcv $kcv_a\$"
check "card P: a key with backup allowed (through pcscd)" "${DP[@]}" keygen "$SKS_IT_MODULE" \
    "$IT_TOKEN" "$IT_PIN" 11 pmail ec256 backup
check "card P: a key without" "${DP[@]}" keygen "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" 13 pno \
    ec256 nobackup
it_gate "card P with A's DKEK and keys"
check "card P: its public key" "${PT[@]}" --read-object --type pubkey --id 11 -o "$T/pub11.der"
openssl pkey -pubin -inform DER -in "$T/pub11.der" -out "$T/pub11.pem"
check "card P: pkcs11-tool --wrap through pcscd" "${PT[@]}" --wrap -m "$MECH" --id "$DKEK_ID" \
    --application-id 11 -o "$T/p11.bin"
check_fail "card P: the key without permission: CKR_KEY_UNEXTRACTABLE" \
    "rv=$CKR_KEY_UNEXTRACTABLE" "${DP[@]}" wrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" 13 "$T/x.bin"
check "card P: delete key 11" "${PT[@]}" --delete-object --type privkey --id 11
check "card P: pkcs11-tool --unwrap through pcscd" "${PT[@]}" --unwrap -m "$MECH" \
    --id "$DKEK_ID" -i "$T/p11.bin"
signs_for "card P, restored through pcscd" 11 ECDSA-SHA256 "$T/pub11.pem"
check "card P: C_UnwrapKey of card A's backup through pcscd (clone)" \
    "${DP[@]}" unwrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" "$T/a01.bin"
signs_for "card P, clone of card A's key" 01 ECDSA-SHA256 "$T/cert01-pub.pem"
check_fail "card P: the flipped backup: CKR_WRAPPED_KEY_INVALID" "rv=$CKR_WRAPPED_KEY_INVALID" \
    "${DP[@]}" unwrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" "$T/a01-flipped.bin"
check_fail "card P: card D's backup (another DKEK): CKR_VENDOR_SKS_DKEK_MISMATCH" \
    "rv=$CKR_DKEK_MISMATCH" "${DP[@]}" unwrap "$SKS_IT_MODULE" "$IT_TOKEN" "$IT_PIN" "$T/d.bin"
sks_card_stop
check_eq "card P: sks-card stops cleanly" 0 "$SKS_CARD_RC"

it_finish
