#!/bin/sh
# Installs what corch needs to build, test and run, on Debian 12, only what is missing.
# dpdk-testpmd is in dpdk-dev since Debian 12's 22.11.11 (it was in dpdk before); the poll-mode
# drivers the dpdk driver uses (af_packet, vhost, virtio-user) are only recommended by dpdk.
set -eu

PACKAGES="g++ cmake make pkg-config clang-format clang libclang-rt-14-dev
libcpprest-dev rapidjson-dev libboost-test-dev libssl-dev
openvswitch-switch iproute2 iptables nftables ethtool iputils-ping netcat-openbsd
tcpdump procps psmisc curl util-linux busybox-static cpio
libvirt-dev libvirt-daemon-system qemu-system-x86 podman runc openvswitch-switch-dpdk
dpdk dpdk-dev librte-net-af-packet23 librte-net-vhost23 librte-net-virtio23 librte-mempool-ring23"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if [ -n "$missing" ]; then
  echo "Installing:$missing"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# The tiny VM of the kvm driver's tests and of the bridge-kvm template (the Debian cloud kernel
# and a busybox initramfs): built now, while the package registry is reachable, into .cache/guest,
# which every build folder shares (a cached guest costs nothing here). Not fatal: without it only
# the VM tests fail, and they try once more.
root=$(cd "$(dirname "$0")/.." && pwd)
if ! "$root/scripts/build-guest.sh" "$root/.cache/guest" >/dev/null; then
  echo "install-deps: could not build the test guest (scripts/build-guest.sh); VM tests will retry" >&2
fi
