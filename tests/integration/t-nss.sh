#!/bin/bash
# t-nss.sh - the module under NSS (as Firefox and Thunderbird load it):
# modutil adds it to a fresh NSS database, certutil sees the token, lists its
# keys and certificates after login, and makes certificate requests signed
# by the token keys, which openssl verifies.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
it_setup nss
T=$IT_TMP
it_token_with_keys

DB="sql:$T/nssdb"
mkdir -p "$T/nssdb"
printf '%s\n' "$IT_PIN" >"$T/pinfile"
printf '999999\n' >"$T/wrong-pinfile"
check "certutil -N: a fresh NSS database" certutil -N -d "$DB" --empty-password
check "modutil -add sks" modutil -dbdir "$DB" -add sks -libfile "$SKS_IT_MODULE" -force
check "modutil -list sks" modutil -dbdir "$DB" -list sks
check_out "NSS loaded the module from the installed file" "^Library file: $SKS_IT_MODULE\$"
check_out "NSS reads the module's PKCS#11 version 2.40" '^PKCS #11 Version 2\.40'
check_out "NSS sees the token" "^  Token Name: $IT_TOKEN *\$"
check_out "NSS sees that the token needs a login" '^  Login Type: Login required'
check "certutil -U" certutil -U -d "$DB"
check_out "certutil -U shows the token" "token: $IT_TOKEN\$"
check "certutil -K -h $IT_TOKEN (login with the PIN file)" certutil -K -d "$DB" -h "$IT_TOKEN" \
    -f "$T/pinfile"
check_eq "certutil -K lists two keys" 2 "$(it_count '^< *[0-9]+> ')"
check_out "the RSA key is listed with its ID and label" '^< *[0-9]+> rsa +01 +.*rsa2048'
check_out "the EC key is listed with its ID and label" '^< *[0-9]+> ec +02 +.*ec256'
check_fail "certutil -K with a wrong PIN fails" 'Incorrect password|SEC_ERROR_BAD_PASSWORD|PIN' \
    certutil -K -d "$DB" -h "$IT_TOKEN" -f "$T/wrong-pinfile"
check "certutil -L -h $IT_TOKEN" certutil -L -d "$DB" -h "$IT_TOKEN" -f "$T/pinfile"
check_out "the keys' certificates are listed as $IT_TOKEN:..." "^$IT_TOKEN:"

check "certutil -R: a request signed by the EC key (id 02)" certutil -R -d "$DB" -h "$IT_TOKEN" \
    -f "$T/pinfile" -k 02 -s "CN=sks nss ec" -a -o "$T/ec.csr"
check "openssl verifies the EC request" openssl req -in "$T/ec.csr" -verify -noout
openssl req -in "$T/ec.csr" -pubkey -noout >"$T/ec.csr.pub" 2>/dev/null || true
check_cmp "the request carries the token's EC key" "$T/ec256.pem" "$T/ec.csr.pub"
check "certutil -R: a request signed by the RSA key (id 01)" certutil -R -d "$DB" -h "$IT_TOKEN" \
    -f "$T/pinfile" -k 01 -s "CN=sks nss rsa" -a -o "$T/rsa.csr"
check "openssl verifies the RSA request" openssl req -in "$T/rsa.csr" -verify -noout
check "certutil -R --pss: an RSA-PSS request" certutil -R -d "$DB" -h "$IT_TOKEN" \
    -f "$T/pinfile" -k 01 -s "CN=sks nss pss" --pss -a -o "$T/pss.csr"
check "openssl verifies the RSA-PSS request" openssl req -in "$T/pss.csr" -verify -noout -text
check_out "the request is signed with RSA-PSS" 'Signature Algorithm: rsassaPss'

check "modutil -delete sks" modutil -dbdir "$DB" -delete sks -force
check "modutil -list after the delete" modutil -dbdir "$DB" -list
check_no_out "the module is gone from the database" "$SKS_IT_MODULE"

it_finish
