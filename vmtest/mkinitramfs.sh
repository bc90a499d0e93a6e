#!/usr/bin/env bash
# mkinitramfs.sh OUT [KERNEL_DIR...]: builds the guests' initramfs (gzip'd
# newc cpio): busybox-static, the static fragscope, the guest workload
# (internal/vmtest/cmd/fsworkload), the probes package's test binary, the
# guest scripts (vmtest/guest) and, for every kernel directory given (as
# printed by fetch-kernels.sh), its modules under /lib/modules/<release>.
# A copy of that fragscope is left next to OUT for the host's replays.
# One image serves every kernel: /init picks the scenario from the kernel
# command line and modules by `uname -r`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

out=${1:?usage: mkinitramfs.sh OUT [KERNEL_DIR...]}
shift
need_pkgs busybox:busybox-static gzip:gzip
busybox=$(command -v busybox)
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked: install busybox-static"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,run,root,etc,vmtest,lib/modules}
cp "$busybox" "$stage/bin/busybox"
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3

GO=${GO:-go}
(
	cd "$REPO_DIR"
	export CGO_ENABLED=0
	$GO build -trimpath -ldflags '-s -w -X main.version=vmtest' -o "$stage/bin/fragscope" ./cmd/fragscope
	$GO build -trimpath -ldflags '-s -w' -o "$stage/bin/fsworkload" ./internal/vmtest/cmd/fsworkload
	$GO test -c -trimpath -ldflags '-s -w' -o "$stage/bin/probes.test" ./internal/probes
)
cp "$VMTEST_DIR/guest/init" "$stage/init"
cp "$VMTEST_DIR"/guest/*.sh "$stage/vmtest/"
chmod 755 "$stage/init" "$stage"/vmtest/*.sh

for k in "$@"; do
	[[ -d $k/modules ]] || continue
	rel=$(cat "$k/release")
	mkdir -p "$stage/lib/modules/$rel"
	cp "$k"/modules/*.ko "$k/modules/load" "$stage/lib/modules/$rel/"
done

mkdir -p "$(dirname "$out")"
# The same static binary replays the guests' recordings on the host.
cp "$stage/bin/fragscope" "$(dirname "$out")/fragscope"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
log "initramfs $out: $(du -h "$out" | cut -f1)"
