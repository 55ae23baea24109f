#!/bin/sh
# install-deps.sh - install the Debian 12 packages needed to build and test
# sks-pkcs11. Safe to run again; does nothing when everything is present.
set -eu
packages="build-essential autoconf automake libtool pkg-config clang
libssl-dev libsqlite3-dev libpcsclite-dev libp11-kit-dev check openssl"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "Installing:$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
