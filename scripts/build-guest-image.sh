#!/usr/bin/env bash
# build-guest-image.sh — build (once, then cached) the tiny guest the libvirt
# integration tests boot, and print its path on the last stdout line.
#
# The image is a BIOS-bootable raw disk: an MBR (syslinux's mbr.bin) and one
# active FAT16 partition holding SYSLINUX, Debian's cloud kernel and a busybox
# initramfs whose /init (scripts/guest/init) prints to the serial console,
# finds the config drive (ISO 9660 labelled config-2 on a read-only virtio
# disk), prints its meta_data.json and runs its user_data. Nothing from the
# kernel package is installed on this machine: the .deb files are only
# extracted. The cache key is the kernel package version plus a hash of these
# scripts, so editing them rebuilds.
#
# Environment: XDG_CACHE_HOME (cache root), CLOUDMUX_GUEST_VERIFY=0 to skip the
# boot check (a qemu boot of the new image before it is cached; it runs when
# qemu-system-x86_64 is installed).
set -euo pipefail
CMX_PROG=build-guest-image
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=guest/lib.sh
. "$here/guest/lib.sh"

meta=linux-image-cloud-amd64
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/cloudmux/guest"
mkdir -p "$cache_root"

# The versioned kernel package the metapackage's candidate depends on, and
# its version (one apt-cache call: this runs on every warm call too).
kernel_package() {
	apt-cache show --no-all-versions "$meta" 2>/dev/null |
		sed -n 's/^Depends:.*\(linux-image-[^ ,]*-cloud-amd64\) *(= *\([^ )]*\)).*/\1 \2/p' | sed -n 1p
}
kdep=$(kernel_package)
if [ -z "$kdep" ]; then
	cmx_apt_update || cmx_die "apt-get update failed"
	kdep=$(kernel_package)
	[ -n "$kdep" ] || cmx_die "apt-cache cannot resolve $meta to a versioned kernel package"
fi
kpkg=${kdep% *}
kver_pkg=${kdep#* }
scripts_hash=$(cat "$here/build-guest-image.sh" "$here"/guest/* | sha256sum | cut -c1-12)
key="${kpkg}_${kver_pkg}_${scripts_hash}"
key=${key//[^A-Za-z0-9._-]/_}
out_dir="$cache_root/$key"
image="$out_dir/cloudmux-guest.raw"

if [ -f "$image" ]; then
	touch "$out_dir" 2>/dev/null || true
	echo "$image"
	exit 0
fi

exec 9>"$cache_root/.lock"
flock 9
if [ -f "$image" ]; then
	echo "$image"
	exit 0
fi

start=$(date +%s)
cmx_log "building guest image $key (one time)"
# genisoimage: for the boot check and libvirttest.ConfigDrive.
cmx_apt_install dosfstools mtools syslinux syslinux-common genisoimage

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Fetch and extract (never install) the kernel and busybox. As root (the
# work directory is ours, not _apt's).
download() {
	(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$@" >&2)
}
if ! download "$kpkg=$kver_pkg" busybox-static; then
	# Stale package lists (the mirror moved on): update them and start over,
	# since the kernel version, and so the cache key, may have changed.
	[ -z "${CMX_GUEST_RETRIED:-}" ] || cmx_die "apt-get download $kpkg=$kver_pkg busybox-static failed"
	cmx_apt_update || cmx_die "apt-get update failed"
	rm -rf "$work"
	exec 9>&-
	CMX_GUEST_RETRIED=1 exec "$here/build-guest-image.sh" "$@"
fi
mkdir -p "$work/k" "$work/bb"
dpkg-deb -x "$work"/"$kpkg"_*.deb "$work/k"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/bb"
vmlinuz=$(ls "$work"/k/boot/vmlinuz-*)
kver=${vmlinuz##*/vmlinuz-}
moddir="$work/k/lib/modules/$kver"
[ -d "$moddir" ] || cmx_die "no modules for $kver in $kpkg"
bb="$work/bb/bin/busybox"
[ -x "$bb" ] || cmx_die "busybox-static has no bin/busybox"

# The modules /init loads (whatever of them the kernel does not build in),
# closed over their dependencies with modules.dep.
want_modules="virtio_pci virtio_blk virtio_net isofs button evdev virtio_scsi sr_mod sd_mod ata_piix ahci"
"$bb" depmod -b "$work/k" "$kver"
rd="$work/initramfs"
mkdir -p "$rd"/{bin,sbin,dev,proc,sys,tmp,run,mnt,etc,root,lib/modules/"$kver"}
declare -A picked=()
for m in $want_modules; do
	line=$(grep -E "(^|/)(${m}|${m//_/-})\.ko:" "$moddir/modules.dep" || true)
	if [ -z "$line" ]; then
		if grep -qE "/(${m}|${m//_/-})\.ko$" "$moddir/modules.builtin"; then
			cmx_log "module $m is built in"
		else
			cmx_log "module $m is not in $kver (skipped)"
		fi
		continue
	fi
	for f in ${line/:/}; do
		picked[$f]=1
	done
done
for f in "${!picked[@]}"; do
	mkdir -p "$rd/lib/modules/$kver/$(dirname "$f")"
	cp "$moddir/$f" "$rd/lib/modules/$kver/$f"
done
cp "$moddir/modules.builtin" "$moddir/modules.order" "$rd/lib/modules/$kver/"
"$bb" depmod -b "$rd" "$kver"
cmx_log "modules in the initramfs: $(printf '%s\n' "${!picked[@]}" | sed 's,.*/,,; s,\.ko$,,' | sort | tr '\n' ' ')"

cp "$bb" "$rd/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] && continue
	ln -sf busybox "$rd/bin/$applet"
done
for applet in $("$bb" --list); do
	[ -e "$rd/sbin/$applet" ] || ln -sf ../bin/busybox "$rd/sbin/$applet"
done
install -m 0755 "$here/guest/init" "$rd/init"
echo "cloudmux-guest $key" >"$rd/etc/cloudmux-guest-release"
(cd "$rd" && find . | LC_ALL=C sort | "$bb" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -9n >"$work/initrd.gz"

cat >"$work/syslinux.cfg" <<'CFG'
SERIAL 0 115200
DEFAULT cloudmux
PROMPT 0
TIMEOUT 0
LABEL cloudmux
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0,115200 panic=-1
CFG

# The FAT16 partition: payload plus 4 MiB of slack, at least 20 MiB.
payload=$(($(stat -c %s "$vmlinuz") + $(stat -c %s "$work/initrd.gz")))
part_mib=$(((payload + 4 * 1048576 + 1048575) / 1048576))
[ "$part_mib" -lt 20 ] && part_mib=20
part_sectors=$((part_mib * 2048))
part="$work/part.img"
truncate -s "${part_mib}M" "$part"
mkfs.vfat -F 16 -n CMXBOOT -h 2048 -i 434d5830 "$part" >&2
export MTOOLS_SKIP_CHECK=1
mcopy -i "$part" "$vmlinuz" ::vmlinuz
mcopy -i "$part" "$work/initrd.gz" ::initrd.gz
mcopy -i "$part" "$work/syslinux.cfg" ::syslinux.cfg
syslinux --install "$part"

# The disk: 1 MiB with the MBR (boot code, one active partition of type 0x0e,
# FAT16 LBA, at sector 2048), then the partition.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
mbr_bin=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$mbr_bin" ] || cmx_die "$mbr_bin missing (syslinux-common)"
disk="$work/disk.raw"
truncate -s 1M "$disk"
dd if="$mbr_bin" of="$disk" conv=notrunc bs=440 count=1 status=none
# Disk signature, then the entry: active, CHS start 0/32/33, type 0x0e, CHS end
# "beyond 1024 cylinders", LBA start, sector count; then 0x55AA.
printf "\\x43\\x4d\\x58\\x30\\x00\\x00\\x80\\x20\\x21\\x00\\x0e\\xfe\\xff\\xff$(le32 2048)$(le32 "$part_sectors")" |
	dd of="$disk" conv=notrunc bs=1 seek=440 status=none
printf '\x55\xaa' | dd of="$disk" conv=notrunc bs=1 seek=510 status=none
cat "$part" >>"$disk"

if [ "${CLOUDMUX_GUEST_VERIFY:-1}" != 0 ]; then
	if command -v qemu-system-x86_64 >/dev/null 2>&1; then
		cmx_log "boot check under qemu (TCG)"
		"$here/guest/boot-test.sh" "$disk" >&2 || cmx_die "the new guest image does not boot (see above); not cached"
	else
		cmx_log "qemu-system-x86_64 not installed: boot check skipped (run scripts/install-libvirt.sh first)"
	fi
fi

mkdir -p "$out_dir"
cp "$work/syslinux.cfg" "$out_dir/syslinux.cfg"
echo "$kver" >"$out_dir/kernel-release"
mv "$disk" "$image.tmp"
mv "$image.tmp" "$image"
# Builds nobody asked for in a week (another kernel, older scripts) go.
find "$cache_root" -mindepth 1 -maxdepth 1 -type d -mtime +7 -exec rm -rf {} + 2>/dev/null || true
cmx_log "guest image $(du -h --apparent-size "$image" | cut -f1), kernel $kver, built in $(($(date +%s) - start)) s"
echo "$image"
