#!/bin/sh
# build.sh BUILDDIR [configure options...] - configure (once) and build out of tree.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=$1
shift
[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
mkdir -p "$builddir"
cd "$builddir"
[ -f Makefile ] || "$top/configure" -q "$@"
make -j"$(nproc)" -s
