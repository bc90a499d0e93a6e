#!/usr/bin/env bash
# Rewrites vmtest/kernels.lock with the newest package of each kernel
# series the private apt sources (vmtest/apt-sources.list) offer, at its
# exact version and sha256. Run it to move the matrix forward, review the
# diff, commit it; fetch-kernels.sh and build-kernel.sh only ever fetch
# what the lock names.
#
# Series: Debian 11's 5.10, 12's 6.1, 13's 6.12, trixie-backports' 6.18
# and the newest 7.x anywhere in the sources, plus linux-source-6.12 (the
# fault-injection kernel's source). From 6.19 on, linux-image-X is a
# metapackage: the kernel is in linux-binary-X and the modules in
# linux-modules-X, which it depends on at the same version; those are
# locked instead.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FRAGSCOPE_VMTEST_APT_UPDATE=1 vm_apt_setup

SERIES=(
	'debian-5.10 linux-image-5\.10\.0-[0-9]+-amd64'
	'debian-6.1 linux-image-6\.1\.0-[0-9]+-amd64'
	'debian-6.12 linux-image-6\.12\.[0-9]+\+deb13-amd64'
	'debian-6.18 linux-image-6\.18\.[0-9]+\+deb13-amd64'
	'debian-7 linux-image-7\.[0-9]+\.[0-9]+\+deb[0-9]+-amd64'
)

# field PKG VER NAME: one field of the package record of that version.
field() {
	vm_apt apt-cache show "$1=$2" 2>/dev/null | awk -v f="$3:" '$1 == f {sub(/^[^:]*: */, ""); print; exit}'
}

candidate() { vm_apt apt-cache policy "$1" | awk '/Candidate:/ {print $2}'; }

entry() { # NAME PKG VER
	local sum
	sum=$(field "$2" "$3" SHA256)
	[[ -n $sum ]] || die "$2=$3: no SHA256 in its record"
	printf '%-12s %-40s %-24s %s\n' "$1" "$2" "$3" "$sum"
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
	echo "# Kernels of make vmtest: name, package, exact version, sha256 of the .deb."
	echo "# Written by vmtest/update-kernels-lock.sh ($(date -u +%Y-%m-%d)); fetched by fetch-kernels.sh"
	echo "# and build-kernel.sh through the private apt configuration (vmtest/lib.sh)."
} >"$out"
for s in "${SERIES[@]}"; do
	read -r name re <<<"$s"
	pkg=$(vm_apt apt-cache search --names-only "^($re)\$" | awk '{print $1}' | sort -V | tail -1)
	[[ -n $pkg ]] || die "no package matches $re"
	ver=$(candidate "$pkg")
	if [[ $name == debian-7 ]]; then
		name=debian-$(sed -E 's/^linux-image-([0-9]+\.[0-9]+)\..*/\1/' <<<"$pkg")
	fi
	deps=$(field "$pkg" "$ver" Depends | tr ',' '\n' | sed -nE 's/^ *(linux-(binary|modules)-[^ ]+) \(= ([^)]+)\).*/\1 \3/p')
	if [[ -n $deps ]]; then
		# 6.19+: the image is a metapackage.
		while read -r dpkg dver; do entry "$name" "$dpkg" "$dver"; done <<<"$deps" >>"$out"
	else
		entry "$name" "$pkg" "$ver" >>"$out"
	fi
	log "$name: $pkg $ver${deps:+ (split: $(echo $deps | tr '\n' ' '))}"
done
ver=$(candidate linux-source-6.12)
entry source-6.12 linux-source-6.12 "$ver" >>"$out"
log "source-6.12: linux-source-6.12 $ver"
mv "$out" "$LOCK"
trap - EXIT
log "wrote $LOCK"
