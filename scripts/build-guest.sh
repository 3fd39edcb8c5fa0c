#!/bin/sh
# Builds the tiny guest of the kvm driver's tests and of the bridge-kvm template:
#   OUTDIR/vmlinuz     the Debian cloud kernel (direct kernel boot)
#   OUTDIR/initrd.img  a busybox-static initramfs (cpio newc, gzip) whose /init is
#                      sf-repository/images/bridge-vm/init, with the kernel modules it needs
# Usage: scripts/build-guest.sh OUTDIR
# The kernel comes from the configured apt sources by `apt-get download` (nothing is installed);
# busybox is the host's /bin/busybox when the busybox-static package is installed (install-deps.sh
# installs it), else downloaded too. Downloads are retried. The outputs are cached: nothing is done
# when both files exist and are newer than the init script. `make build` (install-deps.sh) builds
# the guest into .cache/guest while it has the network, so the tests need none.
set -eu

out=${1:?usage: build-guest.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
init="$here/../sf-repository/images/bridge-vm/init"

if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ] && [ "$out/initrd.img" -nt "$init" ]; then
  exit 0
fi
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/ck-guest.XXXXXX")
chmod 0755 "$work"  # apt-get download fetches as user _apt
trap 'rm -rf "$work"' EXIT INT TERM

# The current cloud kernel: the package that linux-image-cloud-amd64 depends on, unsigned.
kpkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || { echo "build-guest: cannot find the cloud kernel package" >&2; exit 1; }
cd "$work"
fetch="$kpkg-unsigned"
if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
  mkdir -p bb/bin && cp /bin/busybox bb/bin/busybox
else
  fetch="$fetch busybox-static"
fi
# A registry that is briefly unreachable (seen: "Temporary failure resolving") gets three more tries.
tries=0
# shellcheck disable=SC2086
until apt-get download -q -o APT::Sandbox::User=root $fetch >"$work/apt.log" 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 4 ]; then
    cat "$work/apt.log" >&2
    exit 100
  fi
  sleep $((tries * 5))
done
mkdir kernel
dpkg-deb -x linux-image-*.deb kernel
[ -x bb/bin/busybox ] || dpkg-deb -x busybox-static_*.deb bb
kver=$(ls kernel/lib/modules | head -n1)
moddir=kernel/lib/modules/$kver

# The initramfs tree: busybox and its applet links, the init script, the modules.
root=$work/root
mkdir -p "$root/bin" "$root/sbin" "$root/proc" "$root/sys" "$root/dev" "$root/lib/modules"
cp bb/bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cp "$init" "$root/init"
chmod 0755 "$root/init"

# Modules the guest needs that this kernel builds as modules (built-in ones are not in
# modules.dep), each after its dependencies: /modules.order is the load order. modules.dep lists
# every module's whole dependency closure, to be loaded last to first (as modprobe does).
depmod -b kernel "$kver"
wanted="virtio_pci virtio_net bridge"
: >"$work/order"
for m in $wanted; do
  re=$(echo "$m" | sed 's/[-_]/[-_]/g')
  line=$(grep -E "(^|/)$re\.ko[^:/]*:" "$moddir/modules.dep" | head -n1)
  [ -n "$line" ] || continue  # built in
  for path in $(echo "${line#*:}" | tr ' ' '\n' | sed '/^$/d' | tac) "${line%%:*}"; do
    grep -qx "$path" "$work/order" || echo "$path" >>"$work/order"
  done
done
: >"$root/modules.order"
while read -r path; do
  base=$(basename "$path")
  case "$base" in
    *.ko.xz) xz -dc "$moddir/$path" >"$root/lib/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$moddir/$path" >"$root/lib/modules/${base%.zst}"; base=${base%.zst} ;;
    *) cp "$moddir/$path" "$root/lib/modules/$base" ;;
  esac
  echo "$base" >>"$root/modules.order"
done <"$work/order"

# busybox's cpio (the host may have no cpio); a file between the steps, so that set -e sees
# each one fail.
(cd "$root" && find . | "$work/bb/bin/busybox" cpio -o -H newc >"$work/initrd.cpio")
gzip -9 <"$work/initrd.cpio" >"$work/initrd.img"
cp kernel/boot/vmlinuz-* "$work/vmlinuz"
# Renames last, so an interrupted build leaves no half file that looks cached.
mv "$work/vmlinuz" "$out/vmlinuz"
mv "$work/initrd.img" "$out/initrd.img"
echo "build-guest: kernel $kver, modules: $(tr '\n' ' ' <"$root/modules.order")"
