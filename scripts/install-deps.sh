#!/bin/sh
# install-deps.sh - install the Debian 12 packages needed to build and test
# sks-pkcs11, including the tools the integration tests drive the module with
# (pkcs11-tool, the OpenSSL pkcs11 engine, GnuTLS, NSS, p11-kit and its
# client module, pcscd with vsmartcard's virtual reader, OpenSSH's
# ssh-keygen and ssh-agent, Firefox ESR for the browser test, SoftHSMv2 for
# the benchmark). Safe to run again; does nothing when everything is present.
set -eu
packages="build-essential autoconf automake libtool pkg-config clang
libssl-dev libsqlite3-dev libpcsclite-dev libp11-kit-dev check openssl
opensc libengine-pkcs11-openssl gnutls-bin libnss3-tools p11-kit man-db
pcscd vsmartcard-vpcd util-linux p11-kit-modules openssh-client firefox-esr softhsm2"
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
