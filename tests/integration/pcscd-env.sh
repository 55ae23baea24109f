# pcscd-env.sh - an isolated pcscd for tests that need a real PC/SC stack
# with the sks-card daemon behind vpcd (sourced, not run).
#
# pcscd runs in a mount namespace of its own with a fresh tmpfs on
# /run/pcscd, so its socket is not the machine's and the machine's pcscd (if
# any) is left alone; clients reach it with `in_pcscd CMD...` (nsenter into
# that namespace). vpcd's TCP ports (35963, 35964) are not namespaced, so only
# one such pcscd can run on a machine at a time: pcscd_start takes the lock
# $PCSCD_ENV_LOCK for as long as the test runs, and stops what a crashed
# earlier test left behind (PIDs recorded in $PCSCD_ENV_PIDS).
#
# Needs root (unshare -m, mount). When that is not possible pcscd_start fails
# with a clear message in $PCSCD_ENV_ERROR, and sets PCSCD_ENV_SKIP=1 only when
# SKS_ALLOW_NO_PCSCD=1 allows the test to be skipped.
#
# Functions:
#   pcscd_start                start pcscd and wait for the vpcd readers
#   pcscd_stop                 stop it (by PID)
#   sks_card_start DIR [PORT]  start sks-card ($SKS_CARD) in the foreground on
#                              the card DIR (--init) and wait until its reader
#                              holds a card; its log is $SKS_CARD_LOG
#   sks_card_stop              SIGTERM, wait; exit status in $SKS_CARD_RC; then
#                              wait until pcscd shows the reader empty
#   in_pcscd CMD...            run CMD as a client of the isolated pcscd
#   "${IN_PCSCD[@]}" CMD...    the same as a plain command (for lib.sh's check,
#                              which runs commands under timeout)
#   vpcd_reader PORT           the reader name for a vpcd port
# For tests written with lib.sh (its pass, fail, it_finish, it_gate):
#   pcscd_start_or_end WHAT    pcscd_start as a check; when it cannot run the
#                              test ends there: WHAT (the test, or the part
#                              of it that needs pcscd) skipped when
#                              PCSCD_ENV_SKIP=1, else failed
#   sks_card_start_checked DIR DESC [GATE]
#                              sks_card_start DIR as the check DESC, then
#                              it_gate GATE (default: sks-card serving the card)
# Everything started is stopped by PID when the shell exits (the EXIT trap
# runs pcscd_env_cleanup before any trap that was set before pcscd_start).
# The lock is file descriptor 9; what is started here does not inherit it,
# so a leftover process never blocks the next test.
#
# shellcheck shell=bash
# shellcheck disable=SC2034 # PCSCD_ENV_SKIP, SKS_CARD_RC... are for the sourcing test

PCSCD_ENV_LOCK=${PCSCD_ENV_LOCK:-/tmp/sks-pcscd-test.lock}
PCSCD_ENV_PIDS=${PCSCD_ENV_PIDS:-/tmp/sks-pcscd-test.pids}
PCSCD_ENV_TIMEOUT=${PCSCD_ENV_TIMEOUT:-20}
PCSCD_PID=""
SKS_CARD_PID=""
SKS_CARD_RC=""
PCSCD_ENV_ERROR=""
PCSCD_ENV_SKIP=0
PCSCD_ENV_TRAPPED=0
PCSCD_ENV_LOCKED=0
IN_PCSCD=()
PCSCD_ENV_DIR=""

vpcd_reader() { # PORT: the reader vpcd offers on that port
    printf 'Virtual PCD 00 %02d' $((${1:-35963} - 35963))
}

in_pcscd() { # CMD...
    [ -n "$PCSCD_PID" ] || { echo "in_pcscd: pcscd is not running" >&2; return 1; }
    "${IN_PCSCD[@]}" "$@"
}

pcscd_env_fail() { # MESSAGE: why the isolated pcscd cannot run
    PCSCD_ENV_ERROR=$1
    if [ "${SKS_ALLOW_NO_PCSCD:-0}" = 1 ]; then
        PCSCD_ENV_SKIP=1
    fi
    echo "pcscd-env: $PCSCD_ENV_ERROR" >&2
    return 1
}

# Is PID alive (not a zombie) and running the program COMM (so that a
# recycled PID is never hit)?
pcscd_env_is() { # PID COMM
    local stat
    [ -n "$1" ] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

pcscd_env_kill() { # PID COMM: SIGTERM, then SIGKILL after 5 s
    local pid=$1 comm=$2
    pcscd_env_is "$pid" "$comm" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        pcscd_env_is "$pid" "$comm" || break
        sleep 0.1
    done
    if pcscd_env_is "$pid" "$comm"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

pcscd_env_record() { # rewrite the PID file with what runs now
    { [ -z "$PCSCD_PID" ] || echo "$PCSCD_PID pcscd"
      [ -z "$SKS_CARD_PID" ] || echo "$SKS_CARD_PID sks-card"; } >"$PCSCD_ENV_PIDS" 2>/dev/null || true
}

# Stop what a test that died without cleaning up left running. Only called
# with the lock held, so nothing listed can belong to a live test.
pcscd_env_leftovers() {
    local pid comm
    [ -f "$PCSCD_ENV_PIDS" ] || return 0
    while read -r pid comm; do
        if pcscd_env_is "$pid" "$comm"; then
            echo "pcscd-env: stopping $comm (PID $pid) left by an earlier test" >&2
            pcscd_env_kill "$pid" "$comm"
        fi
    done <"$PCSCD_ENV_PIDS"
    rm -f "$PCSCD_ENV_PIDS"
}

pcscd_env_cleanup() {
    pcscd_env_kill "$SKS_CARD_PID" sks-card
    SKS_CARD_PID=""
    pcscd_env_kill "$PCSCD_PID" pcscd
    PCSCD_PID=""
    rm -f "$PCSCD_ENV_PIDS"
    [ -z "$PCSCD_ENV_DIR" ] || rm -rf "$PCSCD_ENV_DIR"
    PCSCD_ENV_DIR=""
    if [ "$PCSCD_ENV_LOCKED" = 1 ]; then
        exec 9>&-
        PCSCD_ENV_LOCKED=0
    fi
}

# Run pcscd_env_cleanup on exit, before whatever the EXIT trap did already.
pcscd_env_trap() {
    local prev words=()
    [ "$PCSCD_ENV_TRAPPED" = 0 ] || return 0
    prev=$(trap -p EXIT) # trap -- 'COMMANDS' EXIT
    [ -z "$prev" ] || eval "words=($prev)"
    prev=${words[2]:-}
    # shellcheck disable=SC2064 # the earlier trap is expanded now, on purpose
    trap "pcscd_env_cleanup; ${prev:-:}" EXIT
    PCSCD_ENV_TRAPPED=1
}

pcscd_env_port_busy() { # PORT: does something listen on it?
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Wait until CMD... succeeds, at most $PCSCD_ENV_TIMEOUT seconds.
pcscd_env_wait() {
    local end=$((SECONDS + PCSCD_ENV_TIMEOUT))
    while [ "$SECONDS" -le "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

pcscd_env_has_reader() { # NAME: opensc-tool lists it
    in_pcscd opensc-tool -l 2>/dev/null | grep -q -- "$1"
}

pcscd_env_has_card() { # NAME: opensc-tool lists it with a card
    in_pcscd opensc-tool -l 2>/dev/null | grep -Eq -- "^[0-9]+ +Yes .*$1\$"
}

pcscd_env_no_card() { # NAME: opensc-tool lists it without a card
    ! pcscd_env_has_card "$1"
}

pcscd_start() {
    local t
    PCSCD_ENV_ERROR=""
    PCSCD_ENV_SKIP=0
    [ -z "$PCSCD_PID" ] || { pcscd_env_fail "pcscd_start: pcscd already runs (PID $PCSCD_PID)"; return 1; }
    if [ "$(id -u)" -ne 0 ]; then
        pcscd_env_fail "an isolated pcscd needs root (unshare -m and mount); run as root, or set SKS_ALLOW_NO_PCSCD=1 to skip"
        return 1
    fi
    for t in pcscd unshare nsenter flock opensc-tool; do
        command -v "$t" >/dev/null 2>&1 || { pcscd_env_fail "$t is not installed"; return 1; }
    done
    if [ ! -e /etc/reader.conf.d/vpcd ]; then
        pcscd_env_fail "the vpcd reader driver is not installed (/etc/reader.conf.d/vpcd; Debian package vsmartcard-vpcd)"
        return 1
    fi
    if ! unshare -m true 2>/dev/null; then
        pcscd_env_fail "unshare -m is not permitted here (a container without CAP_SYS_ADMIN?)"
        return 1
    fi
    pcscd_env_trap
    if [ "$PCSCD_ENV_LOCKED" = 0 ]; then # once per test: a restart keeps the lock
        exec 9>>"$PCSCD_ENV_LOCK"
        if ! flock -w 300 9; then
            pcscd_env_fail "another test held $PCSCD_ENV_LOCK for 300 s"
            return 1
        fi
        PCSCD_ENV_LOCKED=1
        pcscd_env_leftovers
    fi
    if pcscd_env_port_busy 35963; then
        pcscd_env_fail "TCP port 35963 is in use: the machine's own pcscd with vpcd? (stop it for this test)"
        return 1
    fi
    mkdir -p /run/pcscd
    PCSCD_ENV_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sks-pcscd.XXXXXX")
    PCSCD_LOG="$PCSCD_ENV_DIR/pcscd.log"
    # unshare and sh exec: $! is pcscd itself, the PID nsenter needs.
    unshare -m sh -c 'mount -t tmpfs -o mode=0755 tmpfs /run/pcscd && exec pcscd --foreground' \
        </dev/null >"$PCSCD_LOG" 2>&1 9>&- &
    PCSCD_PID=$!
    IN_PCSCD=(env -u PCSCLITE_CSOCK_NAME nsenter -t "$PCSCD_PID" -m --)
    pcscd_env_record
    if ! pcscd_env_wait pcscd_env_has_reader "$(vpcd_reader 35963)"; then
        pcscd_env_fail "pcscd (PID $PCSCD_PID) did not offer the reader '$(vpcd_reader 35963)' within ${PCSCD_ENV_TIMEOUT}s; its log: $(tail -n 5 "$PCSCD_LOG" | tr '\n' ' ')"
        PCSCD_ENV_SKIP=0 # it should have worked: never skip this
        pcscd_stop
        return 1
    fi
    return 0
}

pcscd_stop() {
    pcscd_env_kill "$PCSCD_PID" pcscd
    PCSCD_PID=""
    IN_PCSCD=()
    pcscd_env_record
}

sks_card_start() { # DIR [PORT]
    local dir=$1 port=${2:-35963}
    : "${SKS_CARD:?SKS_CARD must name the sks-card program}"
    [ -z "$SKS_CARD_PID" ] || { echo "sks_card_start: sks-card already runs" >&2; return 1; }
    SKS_CARD_LOG=${SKS_CARD_LOG:-${PCSCD_ENV_DIR:-${TMPDIR:-/tmp}}/sks-card.log}
    "$SKS_CARD" --state-dir "$dir" --init --foreground --port "$port" \
        --log-level "${SKS_CARD_LOG_LEVEL:-info}" </dev/null >>"$SKS_CARD_LOG" 2>&1 9>&- &
    SKS_CARD_PID=$!
    SKS_CARD_PORT=$port
    SKS_CARD_RC=""
    pcscd_env_record
    if ! pcscd_env_wait pcscd_env_has_card "$(vpcd_reader "$port")"; then
        echo "sks_card_start: no card in '$(vpcd_reader "$port")' within ${PCSCD_ENV_TIMEOUT}s" >&2
        tail -n 5 "$SKS_CARD_LOG" >&2
        return 1
    fi
}

pcscd_start_or_end() { # WHAT
    if pcscd_start; then
        pass "an isolated pcscd (PID $PCSCD_PID) offers '$(vpcd_reader 35963)'"
        return 0
    fi
    if [ "$PCSCD_ENV_SKIP" = 1 ]; then
        echo "# $IT_NAME: $1 skipped: $PCSCD_ENV_ERROR (SKS_ALLOW_NO_PCSCD=1)"
        it_finish && exit 0
        exit 1
    fi
    fail "an isolated pcscd with the vpcd readers" "$PCSCD_ENV_ERROR"
    it_finish || true
    exit 1
}

sks_card_start_checked() { # DIR DESC [GATE]
    local err="${IT_TMP:?}/sks-card-start.err"
    if sks_card_start "$1" 2>"$err"; then
        pass "$2"
    else
        fail "$2" "$(tr '\n' ' ' <"$err")"
    fi
    it_gate "${3:-sks-card serving the card}"
}

sks_card_stop() { # SIGTERM and wait (10 s, then SIGKILL); $SKS_CARD_RC is its exit status
    local pid=$SKS_CARD_PID
    SKS_CARD_RC=""
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        pcscd_env_is "$pid" sks-card || break
        sleep 0.1
    done
    if pcscd_env_is "$pid" sks-card; then
        echo "sks_card_stop: sks-card (PID $pid) ignored SIGTERM for 10 s; killed" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    SKS_CARD_RC=0
    wait "$pid" || SKS_CARD_RC=$?
    SKS_CARD_PID=""
    pcscd_env_record
    # pcscd shows the card until it next looks at the reader (about a second):
    # a client or an sks_card_start meanwhile would take it for a card.
    if [ -n "$PCSCD_PID" ] && [ -n "${SKS_CARD_PORT:-}" ] &&
        ! pcscd_env_wait pcscd_env_no_card "$(vpcd_reader "$SKS_CARD_PORT")"; then
        echo "sks_card_stop: pcscd still shows a card in '$(vpcd_reader "$SKS_CARD_PORT")'" >&2
    fi
}
