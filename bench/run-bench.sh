#!/bin/bash
# run-bench.sh [--short] [--out FILE] [BUILD_DIR] - sks-pkcs11 beside
# SoftHSMv2 and raw OpenSSL, in one run, printed as one table (bench/README.md).
#
# Sets up the peers in a temporary directory: a SoftHSMv2 token (softhsm2-util
# with a private SOFTHSM2_CONF), an SKS card with a token through the build's
# sks-pkcs11.so (pkcs11-tool), cards with 10..10,000 keys (sks-bench
# populate-sks: issuer sessions on the card engine), and an isolated pcscd
# with sks-card serving the same card (tests/integration/pcscd-env.sh, needs
# root; without it the PC/SC figures are n/a). Then runs sks-bench's
# measurements, collecting their records in one file, and prints the report.
#
# --out FILE: keep the table in FILE and the result records in FILE.records.
# --short: a quick run for CI (well under a minute): short timed loops,
# 10 and 100 keys only. The script fails only when the benchmark program
# itself breaks (a crash, a usage error, no report), never on a figure.
#
# BUILD_DIR defaults to _build/check (scripts/test-all.sh's build). Other
# environment: SOFTHSM2_MODULE (default /usr/lib/softhsm/libsofthsm2.so),
# BENCH_THREADS (N of the N-thread figures, default nproc, at least 2).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

short=0
out=""
build=""
while [ $# -gt 0 ]; do
    case $1 in
    --short) short=1 ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "usage: $0 [--short] [--out FILE] [BUILD_DIR]" >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done
build=$(cd "${build:-$top/_build/check}" && pwd) || exit 2

BENCH="$build/bench/sks-bench"
MODULE="$build/src/token/.libs/sks-pkcs11.so"
SKS_CARD="$build/sks-card"
SOFTHSM=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
for f in "$BENCH" "$MODULE" "$SKS_CARD"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "run-bench: $f is missing (build first: make)" >&2; exit 2; }
done

TOKEN=bench
SO_PIN=87654321
PIN=123456
nproc=$(nproc 2>/dev/null || echo 2)
THREADS=${BENCH_THREADS:-$((nproc < 2 ? 2 : nproc))}
if [ "$short" = 1 ]; then
    SECONDS_PER=0.25 LOAD_REPS=3 SCALE_REPS=1 COUNTS="10 100" PROV_SECONDS=0.5 RTT_COUNT=500
else
    SECONDS_PER=2 LOAD_REPS=9 SCALE_REPS=3 COUNTS="10 100 1000 10000" PROV_SECONDS=3 RTT_COUNT=5000
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sks-bench.XXXXXX")
# Key population is fastest where commits cost no disk flush; the finished
# card state is then copied to $WORK (on the disk) where it is measured.
STAGE=""
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    STAGE=$(mktemp -d /dev/shm/sks-bench.XXXXXX)
fi
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    rm -rf "$WORK"
    [ -z "$STAGE" ] || rm -rf "$STAGE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RESULTS="$WORK/results"
: >"$RESULTS"
broken=0
started=$(date +%s)

say() { echo "run-bench: $*" >&2; }

# bench CMD ARGS...: run sks-bench, its records into $RESULTS. Exit status 1
# is a figure it could not measure (n/a in the table); anything above is the
# program breaking.
bench() {
    local rc=0
    "$BENCH" "$@" >>"$RESULTS" || rc=$?
    if [ "$rc" -gt 1 ]; then
        say "sks-bench $1 failed with status $rc"
        broken=1
    fi
    return 0
}

# The same inside the isolated pcscd's namespace, with an environment.
bench_pcscd() { # VAR=VALUE CMD ARGS...
    local envset=$1 rc=0
    shift
    in_pcscd env "$envset" "$BENCH" "$@" >>"$RESULTS" || rc=$?
    if [ "$rc" -gt 1 ]; then
        say "sks-bench $1 (pcscd) failed with status $rc"
        broken=1
    fi
    return 0
}

na() { # REASON KEY...
    local why=$1 k
    shift
    for k in "$@"; do echo "$k n/a:$why" >>"$RESULTS"; done
}

write_conf() { # FILE STATE_DIR [extra lines]
    local file=$1 state=$2
    shift 2
    {
        echo "state_dir = $state"
        echo "log_level = error"
        echo "log_file = $WORK/module.log"
        for line in "$@"; do echo "$line"; done
    } >"$file"
}

{
    echo "meta.threads $THREADS"
    echo "meta.seconds $SECONDS_PER"
    echo "meta.load_reps $LOAD_REPS"
    [ "$short" = 0 ] || echo "meta.short 1"
} >>"$RESULTS"

# ---- raw libcrypto ------------------------------------------------------------
say "raw libcrypto"
bench raw --threads "$THREADS" --seconds "$SECONDS_PER"

# ---- sks-pkcs11 on the embedded card --------------------------------------------
SKS_STATE="$WORK/sks"
EMB_CONF="$WORK/sks-embedded.conf"
write_conf "$EMB_CONF" "$SKS_STATE" "transport = embedded"
P11_SKS=(env SKS_PKCS11_CONF="$EMB_CONF" pkcs11-tool --module "$MODULE")
say "sks-pkcs11: token '$TOKEN' with an RSA-2048 and a P-256 key on a new embedded card"
sks_ok=1
{
    "${P11_SKS[@]}" --init-token --label "$TOKEN" --so-pin "$SO_PIN" &&
        "${P11_SKS[@]}" --token-label "$TOKEN" --login --login-type so --so-pin "$SO_PIN" \
            --init-pin --pin "$PIN" &&
        "${P11_SKS[@]}" --token-label "$TOKEN" --login --pin "$PIN" --keypairgen \
            --key-type rsa:2048 --id 01 --label rsa &&
        "${P11_SKS[@]}" --token-label "$TOKEN" --login --pin "$PIN" --keypairgen \
            --key-type EC:prime256v1 --id 02 --label ec
} >"$WORK/sks-setup.log" 2>&1 || sks_ok=0
if [ "$sks_ok" = 1 ]; then
    export SKS_PKCS11_CONF="$EMB_CONF"
    say "sks-pkcs11 embedded: signatures, load cost"
    bench sign --module "$MODULE" --token "$TOKEN" --pin "$PIN" --peer sks-emb \
        --threads "$THREADS" --seconds "$SECONDS_PER"
    bench load --module "$MODULE" --token "$TOKEN" --pin "$PIN" --peer sks-emb --reps "$LOAD_REPS"
    write_conf "$WORK/sks-trace.conf" "$SKS_STATE" "transport = embedded" \
        "apdu_trace = $WORK/embedded.trace"
    SKS_PKCS11_CONF="$WORK/sks-trace.conf" bench apdu-count --module "$MODULE" --token "$TOKEN" \
        --pin "$PIN" --peer sks-emb --trace "$WORK/embedded.trace"
    say "sks-pkcs11 embedded: C_GenerateKeyPair rate"
    bench populate-p11 --module "$MODULE" --token "$TOKEN" --pin "$PIN" --peer sks-module \
        --first 1 --count 5
    unset SKS_PKCS11_CONF
else
    say "sks-pkcs11 set-up failed: $(tail -n 3 "$WORK/sks-setup.log" | tr '\n' ' ')"
    broken=1
    na "sks-pkcs11 set-up failed" sign.sks-emb.rsa.t1 sign.sks-emb.rsa.tN sign.sks-emb.ec.t1 \
        sign.sks-emb.ec.tN load.sks-emb
fi

# ---- SoftHSMv2 --------------------------------------------------------------------
soft_conf() { # FILE TOKENDIR
    mkdir -p "$2"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
        "$2" >"$1"
}
soft_ok=0
if [ -f "$SOFTHSM" ] && command -v softhsm2-util >/dev/null; then
    soft_conf "$WORK/softhsm2.conf" "$WORK/softhsm"
    export SOFTHSM2_CONF="$WORK/softhsm2.conf"
    P11_SOFT=(pkcs11-tool --module "$SOFTHSM" --token-label "$TOKEN" --login --pin "$PIN")
    say "SoftHSMv2: token '$TOKEN' with an RSA-2048 and a P-256 key"
    if {
        softhsm2-util --init-token --free --label "$TOKEN" --so-pin "$SO_PIN" --pin "$PIN" &&
            "${P11_SOFT[@]}" --keypairgen --key-type rsa:2048 --id 01 --label rsa &&
            "${P11_SOFT[@]}" --keypairgen --key-type EC:prime256v1 --id 02 --label ec
    } >"$WORK/softhsm-setup.log" 2>&1; then
        soft_ok=1
        say "SoftHSMv2: signatures, load cost"
        bench sign --module "$SOFTHSM" --token "$TOKEN" --pin "$PIN" --peer softhsm \
            --threads "$THREADS" --seconds "$SECONDS_PER"
        bench load --module "$SOFTHSM" --token "$TOKEN" --pin "$PIN" --peer softhsm \
            --reps "$LOAD_REPS"
    else
        say "SoftHSMv2 set-up failed: $(tail -n 3 "$WORK/softhsm-setup.log" | tr '\n' ' ')"
    fi
    unset SOFTHSM2_CONF
fi
[ "$soft_ok" = 1 ] || na "SoftHSMv2 not available (Debian package softhsm2)" \
    sign.softhsm.rsa.t1 sign.softhsm.rsa.tN sign.softhsm.ec.t1 sign.softhsm.ec.tN load.softhsm

# ---- key-count scaling ------------------------------------------------------------
SCALE_TOKEN=scale
prev=0
# SoftHSMv2's token grows in $STAGE (where it writes fastest) and is copied
# to $WORK/softhsm-scale for each measurement.
SOFT_MAKE=${STAGE:-$WORK}/softhsm-make
if [ "$soft_ok" = 1 ]; then
    soft_conf "$WORK/softhsm-make.conf" "$SOFT_MAKE"
    soft_conf "$WORK/softhsm-scale.conf" "$WORK/softhsm-scale"
    SOFTHSM2_CONF="$WORK/softhsm-make.conf" softhsm2-util --init-token --free \
        --label "$SCALE_TOKEN" --so-pin "$SO_PIN" --pin "$PIN" >/dev/null 2>&1 || soft_ok=0
fi
for n in $COUNTS; do
    # sks: a card holding n keys in one token, made in $STAGE, measured on disk.
    say "scaling: $n keys (sks-pkcs11)"
    dir="$WORK/scale-sks"
    rm -rf "$dir"
    make_in=${STAGE:-$WORK}/scale-sks-$n
    rm -rf "$make_in"
    mkdir -p "$make_in"
    bench populate-sks --state-dir "$make_in/card" --token "$SCALE_TOKEN" --pin "$PIN" \
        --count "$n" --peer sks
    if [ "$make_in" != "$dir" ]; then
        cp -a "$make_in" "$dir" && rm -rf "$make_in"
    fi
    write_conf "$WORK/scale.conf" "$dir" "transport = embedded"
    SKS_PKCS11_CONF="$WORK/scale.conf" bench scale --module "$MODULE" --token "$SCALE_TOKEN" \
        --pin "$PIN" --count "$n" --peer sks --reps "$SCALE_REPS" --state-dir "$dir/card"
    rm -rf "$dir"
    # SoftHSMv2: the same token grows to n keys.
    if [ "$soft_ok" = 1 ]; then
        say "scaling: $n keys (SoftHSMv2)"
        SOFTHSM2_CONF="$WORK/softhsm-make.conf" bench populate-p11 --module "$SOFTHSM" \
            --token "$SCALE_TOKEN" --pin "$PIN" --first $((prev + 1)) --count "$n" --peer softhsm
        if [ "$SOFT_MAKE" != "$WORK/softhsm-scale" ]; then
            rm -rf "$WORK/softhsm-scale"
            cp -a "$SOFT_MAKE" "$WORK/softhsm-scale"
        fi
        SOFTHSM2_CONF="$WORK/softhsm-scale.conf" bench scale --module "$SOFTHSM" \
            --token "$SCALE_TOKEN" --pin "$PIN" --count "$n" --peer softhsm --reps "$SCALE_REPS" \
            --state-dir "$WORK/softhsm-scale"
        prev=$n
    fi
done

# ---- provisioning -------------------------------------------------------------------
say "provisioning sessions"
bench prov --state-dir "$WORK/prov-card" --name disk --seconds "$PROV_SECONDS"
if [ -n "$STAGE" ]; then
    "$BENCH" prov --state-dir "$STAGE/prov-card" --name tmpfs --seconds "$PROV_SECONDS" |
        grep '^prov\.tmpfs\.' >>"$RESULTS" || true
    rm -rf "$STAGE/prov-card"
else
    na "no tmpfs (/dev/shm)" prov.tmpfs.sessions_s
fi

# ---- issuer-side injection, no-card mode ----------------------------------------------
say "issuer-side injection (no-card mode)"
mkdir -p "$WORK/issuer-state"
write_conf "$WORK/issuer.conf" "$WORK/issuer-state" "transport = none"
SKS_PKCS11_CONF="$WORK/issuer.conf" bench inject --module "$MODULE" --pin "$PIN" \
    --seconds "$PROV_SECONDS"

# ---- pcscd + sks-card ------------------------------------------------------------------
PCSC_KEYS=(sign.sks-pcsc.rsa.t1 sign.sks-pcsc.rsa.tN sign.sks-pcsc.ec.t1 sign.sks-pcsc.ec.tN
    apdu.rtt_s apdu.sks-pcsc.login apdu.sks-pcsc.find_first apdu.sks-pcsc.find
    apdu.sks-pcsc.sign_rsa apdu.sks-pcsc.sign_ec)
if [ "$sks_ok" = 1 ]; then
    # shellcheck source=tests/integration/pcscd-env.sh
    . "$top/tests/integration/pcscd-env.sh"
    export SKS_CARD
    say "pcscd + sks-card (waits for $PCSCD_ENV_LOCK while an integration test holds it)"
    if pcscd_start 2>"$WORK/pcscd.err"; then
        SKS_CARD_LOG="$WORK/sks-card.log" # read by sks_card_start
        if sks_card_start "$SKS_STATE/card" 2>>"$WORK/pcscd.err"; then
            reader=$(vpcd_reader 35963)
            write_conf "$WORK/pcsc.conf" "$WORK/pcsc-state" "transport = pcsc"
            write_conf "$WORK/pcsc-trace.conf" "$WORK/pcsc-state" "transport = pcsc" \
                "apdu_trace = $WORK/pcsc.trace"
            say "pcscd + sks-card: signatures, round trips, APDUs per operation"
            bench_pcscd SKS_PKCS11_CONF="$WORK/pcsc.conf" sign --module "$MODULE" \
                --token "$TOKEN" --pin "$PIN" --peer sks-pcsc --threads "$THREADS" \
                --seconds "$SECONDS_PER"
            bench_pcscd SKS_PKCS11_CONF="$WORK/pcsc.conf" apdu-rate --reader "$reader" \
                --count "$RTT_COUNT"
            bench_pcscd SKS_PKCS11_CONF="$WORK/pcsc-trace.conf" apdu-count --module "$MODULE" \
                --token "$TOKEN" --pin "$PIN" --peer sks-pcsc --trace "$WORK/pcsc.trace"
            sks_card_stop
        else
            na "sks-card did not start" "${PCSC_KEYS[@]}"
        fi
        pcscd_stop
    else
        na "no isolated pcscd: ${PCSCD_ENV_ERROR:-see pcscd-env.sh}" "${PCSC_KEYS[@]}"
    fi
else
    na "sks-pkcs11 set-up failed" "${PCSC_KEYS[@]}"
fi

# ---- the table ----------------------------------------------------------------------
say "done in $(($(date +%s) - started)) s"
table="$WORK/table"
if ! "$BENCH" report --records "$RESULTS" >"$table"; then
    say "the report failed"
    exit 1
fi
cat "$table"
# --out: the table, and its result records beside it (sks-bench report --records).
[ -z "$out" ] || { cp "$table" "$out" && cp "$RESULTS" "$out.records"; }
if [ "$broken" = 1 ]; then
    say "the benchmark program broke (see above)"
    exit 1
fi
exit 0
