#!/bin/sh
# Installs what corch needs to build, test and run, on Debian 12, only what is missing.
set -eu

PACKAGES="g++ cmake make pkg-config clang-format
libcpprest-dev rapidjson-dev libboost-test-dev libssl-dev
openvswitch-switch iproute2 iptables nftables ethtool iputils-ping netcat-openbsd
tcpdump procps psmisc curl util-linux busybox-static cpio
libvirt-dev libvirt-daemon-system qemu-system-x86 podman runc dpdk openvswitch-switch-dpdk"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "Installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
