#!/bin/bash
# t-install.sh - what `make install` puts in place and how the module finds
# its configuration: the module exports only C_GetFunctionList, the p11-kit
# registration, the man pages; without SKS_PKCS11_CONF the card lives under
# $XDG_DATA_HOME/sks (else ~/.local/share/sks); a configuration file that
# cannot be read or has a bad line makes C_Initialize fail; transport = pcsc
# leaves the embedded card out and logs about PC/SC; apdu_trace records the
# exchanges.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
it_setup install
T=$IT_TMP
PREFIX=${SKS_IT_PREFIX:?set by run-all.sh}

# ---- installed files ------------------------------------------------------------------
check "the module is installed in \$(libdir)/pkcs11" test -f "$SKS_IT_MODULE"
check "nm reads the module's dynamic symbols" nm -D --defined-only "$SKS_IT_MODULE"
exports=$(awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' "$IT_OUT" | sort | tr '\n' ' ')
check_eq "the module exports only C_GetFunctionList" "C_GetFunctionList " "$exports"
reg="$SKS_IT_P11KIT_DIR/sks.module"
check "the p11-kit registration sks.module is installed" test -f "$reg"
check "sks.module" cat "$reg"
check_out "sks.module names the module" '^module: *(.*/)?sks-pkcs11\.so$'
check_out "sks.module says critical: no" '^critical: *no$'
modline=$(sed -n 's/^module: *//p' "$reg" 2>/dev/null | head -n 1)
case $modline in
/*) check_eq "an absolute module path in sks.module is the installed module" "$SKS_IT_MODULE" "$modline" ;;
*) pass "sks.module names the module relative to p11-kit's module directory" ;;
esac
check "sks-tool is installed" test -x "$PREFIX/bin/sks-tool"
for page in man7/sks-pkcs11.7 man5/sks-pkcs11.conf.5 man1/sks-tool.1; do
    check "man page $page is installed" test -f "$PREFIX/share/man/$page"
    if [ -f "$PREFIX/share/man/$page" ]; then
        # Only groff's and man's complaints (stderr) are kept; the page goes away.
        # shellcheck disable=SC2016 # $1 is expanded by the inner sh
        check "man page $page renders without warnings" sh -c \
            'MANWIDTH=80 man --warnings -l "$1" >/dev/null' sh "$PREFIX/share/man/$page"
        check_no_out "man page $page: no groff warning" '.'
    fi
done

# ---- configuration ----------------------------------------------------------------------
unset SKS_PKCS11_CONF
export XDG_DATA_HOME="$T/xdg"
check "no configuration file: -L works" "${P11[@]}" -L
check "the card is created under \$XDG_DATA_HOME/sks/card" test -d "$T/xdg/sks/card"
unset XDG_DATA_HOME
check "no XDG_DATA_HOME: -L works" "${P11[@]}" -L
check "the card is created under ~/.local/share/sks/card" test -d "$HOME/.local/share/sks/card"
export XDG_DATA_HOME="$HOME/.local/share"

export SKS_PKCS11_CONF="$T/missing.conf"
check_fail "a configuration file that does not exist makes C_Initialize fail" 'C_Initialize' \
    "${P11[@]}" -I
printf 'state_dir = %s\nno_such_key = 1\n' "$T/state-bad" >"$T/bad.conf"
export SKS_PKCS11_CONF="$T/bad.conf"
check_fail "an unknown key makes C_Initialize fail" 'C_Initialize' "${P11[@]}" -I
check "... and no card was created for it" test ! -e "$T/state-bad"

printf '# comment line\n\n  state_dir = %s   # trailing comment\ntransport = pcsc\nlog_level = info\nlog_file = %s\n' \
    "$T/state-pcsc" "$T/pcsc.log" >"$T/pcsc.conf"
export SKS_PKCS11_CONF="$T/pcsc.conf"
# pkcs11-tool exits 1 when there is no slot at all, so only the output counts.
it_run "${P11[@]}" -I -L || true
check_out "transport = pcsc: C_Initialize succeeds (comments and blanks parsed)" '^Cryptoki version 2\.40'
check_no_out "transport = pcsc: no embedded card is offered" 'SKS embedded card'
check "transport = pcsc: no embedded card state was created" test ! -e "$T/state-pcsc/card"
check "the module wrote its log file" test -s "$T/pcsc.log"
check "the log" cat "$T/pcsc.log"
check_out "the log tells about PC/SC" 'PC/SC'

it_write_conf "$T/trace.conf" "$T/state-trace" "apdu_trace = $T/apdu.trace"
export SKS_PKCS11_CONF="$T/trace.conf"
check "-L with apdu_trace" "${P11[@]}" -L
check "the APDU trace file exists" test -s "$T/apdu.trace"
check "the trace" cat "$T/apdu.trace"
check_out "the trace has commands ('> ' hex lines)" '^> [0-9A-Fa-f]{8}'
check_out "the trace has responses ('< ' hex lines)" '^< [0-9A-Fa-f]{4}'
check_no_out "the trace has nothing but '>' and '<' lines" '^[^<>]'
check "the card under state_dir (not the default one) was used" test -d "$T/state-trace/card"

it_finish
