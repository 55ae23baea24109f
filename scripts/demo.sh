#!/bin/sh
# demo.sh - the README's first command: install what is needed, build, and run
# the SKS sample session against a fresh card in a temporary directory.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" "$top/_build" --enable-werror
"$top/_build/sks-sample-session"
