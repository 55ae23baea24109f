# provision-env.sh - what the provisioning tests (t-inject.sh,
# t-provision.sh) share (sourced after lib.sh and it_setup): the programs,
# the example issuer started on a free port, the adversarial relay in front
# of it, and waiting for files the background programs write.
#
#   issuer_start DIR [ARGS...]  sks-issuer-demo with its state in DIR, its
#                               log in DIR.log, the session keys it used in
#                               DIR.secrets; sets ISSUER_PORT and ISSUER_PID
#   relay_start MODE            evil-relay (MODE: see evil-relay.c) in front
#                               of the issuer; sets RELAY_PORT
#   wait_file FILE              until FILE is not empty (10 s at most)
#
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the sourcing test

BIN=${SKS_IT_PREFIX:?run through run-all.sh}/bin
BUILD=$(cd "$(dirname "${SKS_IT_THREADS:?}")/../.." && pwd)
MEMSCAN=$BUILD/tests/integration/memscan
RELAY=$BUILD/tests/integration/evil-relay
SKDERIVE=$BUILD/tests/integration/sk-derive
SKS_CARD=$SKS_IT_PREFIX/sbin/sks-card
SKS_CARD_LOG="$IT_TMP/sks-card.log"
ISSUER_PORT=""
ISSUER_PID=""
RELAY_PORT=""

wait_file() { # FILE
    local i
    for i in $(seq 1 100); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

issuer_start() { # DIR [ARGS...]
    local dir=$1
    shift
    rm -f "$dir.port" "$dir.secrets"
    env -u SKS_PKCS11_CONF "$BIN/sks-issuer-demo" --module "$SKS_IT_MODULE" --state-dir "$dir" \
        --port 0 --port-file "$dir.port" --secrets-out "$dir.secrets" "$@" >>"$dir.log" 2>&1 &
    ISSUER_PID=$!
    it_bg "$ISSUER_PID"
    wait_file "$dir.port" || true
    ISSUER_PORT=$(cat "$dir.port" 2>/dev/null || true)
    if [ -n "$ISSUER_PORT" ]; then
        pass "sks-issuer-demo listens on 127.0.0.1:$ISSUER_PORT ($*)"
    else
        fail "sks-issuer-demo did not start" "$(tail -n 5 "$dir.log")"
    fi
}

relay_start() { # MODE
    rm -f "$IT_TMP/relay.port"
    "$RELAY" --upstream "127.0.0.1:$ISSUER_PORT" --port-file "$IT_TMP/relay.port" --mode "$1" \
        >>"$IT_TMP/relay.log" 2>&1 &
    it_bg $!
    wait_file "$IT_TMP/relay.port" || true
    RELAY_PORT=$(cat "$IT_TMP/relay.port" 2>/dev/null || true)
}
