#!/bin/sh
# Builds the corch/bridge container image and imports it into a Docker Engine (dockerd, or
# podman's Docker-compatible service) through its API, without a registry:
#
#   build.sh [SOCKET [REFERENCE]]     default /var/run/docker.sock and corch/bridge:1
#
# The root file system is Debian's busybox-static (/bin/busybox), a symlink per applet, and the
# entrypoint. It is imported with POST /images/create?fromSrc=- (podman takes the tag from
# repo=NAME:TAG and ignores a separate tag parameter), with the entrypoint set by `changes`.
# Needs busybox-static, tar and curl.
set -eu

socket=${1:-/var/run/docker.sock}
socket=${socket#unix://}
reference=${2:-corch/bridge:1}
api=${CORCH_DOCKER_API:-v1.41}
here=$(cd "$(dirname "$0")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/corch-bridge-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A statically linked busybox: $BUSYBOX, the installed one when busybox-static is installed, or
# the busybox-static package fetched with apt-get download (when the dynamic busybox package is
# installed instead: the two conflict) and unpacked here.
is_static() { [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1; }
busybox=${BUSYBOX:-/bin/busybox}
if ! is_static "$busybox"; then
  (cd "$work" && apt-get download busybox-static >/dev/null 2>&1) || true
  deb=$(ls "$work"/busybox-static_*.deb 2>/dev/null | head -n 1)
  if [ -n "$deb" ]; then
    dpkg-deb -x "$deb" "$work/deb"
    busybox=$work/deb/bin/busybox
  fi
fi
if ! is_static "$busybox"; then
  echo "build.sh: no statically linked busybox (install busybox-static, or set BUSYBOX)" >&2
  exit 1
fi

root=$work/root
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" "$root/proc" \
  "$root/sys" "$root/dev" "$root/tmp" "$root/run" "$root/corch"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$here/entrypoint" "$root/corch/entrypoint"
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
tar -C "$root" -cf "$work/rootfs.tar" --owner=0 --group=0 --numeric-owner .

changes=$(printf '%s' 'ENTRYPOINT ["/bin/sh", "/corch/entrypoint"]' | sed 's/ /%20/g; s/"/%22/g; s/\[/%5B/g; s/\]/%5D/g; s/,/%2C/g; s/\//%2F/g')
status=$(curl -sS --unix-socket "$socket" -o "$work/answer" -w '%{http_code}' \
  -X POST -H 'Content-Type: application/x-tar' --data-binary "@$work/rootfs.tar" \
  "http://docker/$api/images/create?fromSrc=-&repo=$reference&changes=$changes")
if [ "$status" != 200 ]; then
  echo "build.sh: the engine at $socket refused the import ($status): $(cat "$work/answer")" >&2
  exit 1
fi
if grep -q '"error' "$work/answer"; then
  echo "build.sh: the import of $reference failed: $(cat "$work/answer")" >&2
  exit 1
fi
echo "build.sh: imported $reference into $socket"
