#!/usr/bin/env bash
# Builds the fault-injection kernel (scenario 3) from Debian's
# linux-source-6.12 at the version vmtest/kernels.lock pins (source-6.12),
# fetched through lib.sh's private apt configuration:
# x86_64_defconfig + kvm_guest.config + faultinject.config,
# modules off. Cached under $CACHE/kernels/faultinject-<key>, key = hash of
# the config fragment, the source package version and RECIPE below; the
# build tree is kept in $CACHE/build so a config change rebuilds only what
# it touches. Prints the kernel directory (vmlinuz, release) on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RECIPE=1 # bump when the steps below change what gets built
SRC_PKG=linux-source-6.12

need_pkgs flex:flex bison:bison pahole:dwarves bc:bc gcc:gcc make:make xz:xz-utils
dpkg -s libelf-dev libssl-dev >/dev/null 2>&1 || { apt-get update -qq >&2; apt-get install -y -qq libelf-dev libssl-dev >&2; }

read -r lpkg ver _ < <(lock_entries source-6.12)
[[ $lpkg == "$SRC_PKG" && -n $ver ]] || die "vmtest/kernels.lock has no source-6.12 $SRC_PKG line"
key=$( { cat "$VMTEST_DIR/faultinject.config"; echo "$SRC_PKG=$ver recipe=$RECIPE"; } | sha256sum | cut -c1-12)
out=$CACHE/kernels/faultinject-$key
if [[ -f $out/.done ]]; then
	log "fault-injection kernel cached: $out"
	echo "$out"
	exit 0
fi

t0=$SECONDS
src=$CACHE/build/$SRC_PKG-$ver
if [[ ! -f $src/.unpacked ]]; then
	log "fetching $SRC_PKG $ver"
	rm -rf "$src"
	mkdir -p "$src"
	deb=$(mktemp -d "$CACHE/build/deb.XXXXXX")
	vm_apt_setup
	download_locked source-6.12 "$deb"
	dpkg-deb -x "$deb"/"$SRC_PKG"_*.deb "$deb/x"
	tar -xJf "$deb"/x/usr/src/"$SRC_PKG".tar.xz -C "$src" --strip-components=1
	rm -rf "$deb"
	touch "$src/.unpacked"
	log "unpacked in $((SECONDS - t0))s"
fi

cd "$src"
make -s x86_64_defconfig >&2
scripts/kconfig/merge_config.sh -m .config kernel/configs/kvm_guest.config "$VMTEST_DIR/faultinject.config" >/dev/null
make -s olddefconfig >&2
# merge_config warns but carries on when an option cannot be set: fail here.
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=y)
		grep -qx "$line" .config || { log "config: $line did not stick"; bad=1; } ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		grep -q "^$opt=" .config && { log "config: $opt is still set"; bad=1; } ;;
	esac
done <"$VMTEST_DIR/faultinject.config"
((bad == 0)) || die "config fragment did not apply (see above)"

log "building the fault-injection kernel on $(nproc) CPUs"
t1=$SECONDS
nice make -j"$(nproc)" bzImage >"$CACHE/build/faultinject-build.log" 2>&1 ||
	{ tail -40 "$CACHE/build/faultinject-build.log" >&2; die "kernel build failed (log: $CACHE/build/faultinject-build.log)"; }
log "kernel built in $((SECONDS - t1))s"

rm -rf "$out" && mkdir -p "$out"
cp arch/x86/boot/bzImage "$out/vmlinuz"
make -s kernelrelease >"$out/release"
cp .config "$out/config"
echo "$((SECONDS - t1))" >"$out/build-seconds"
touch "$out/.done"
echo "$out"
