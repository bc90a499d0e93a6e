#!/usr/bin/env bash
# Fetches the Debian guest kernels of `make vmtest` with `apt-get download`
# and unpacks only what the guests need (never installs them):
#   $CACHE/kernels/debian-<series>/vmlinuz
#   $CACHE/kernels/debian-<series>/release          (uname -r)
#   $CACHE/kernels/debian-<series>/package          (package=version)
#   $CACHE/kernels/debian-<series>/modules/*.ko     (decompressed)
#   $CACHE/kernels/debian-<series>/modules/load     (insmod order)
# Series: 6.1 (linux-image-6.1.0-N-amd64) and 6.12 (linux-image-6.12.N+deb12-amd64),
# the newest the apt sources offer; FRAGSCOPE_VMTEST_PKG_6_1 / _6_12 pin one.
# A series whose cached package is still the chosen one is reused.
# Prints the kernel directories on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# nf_conntrack and what it needs, dependencies first (checked below against
# each module's own depends= list).
MODULES=(crc32c_generic libcrc32c nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack)

need_pkgs xz:xz-utils
apt-cache pkgnames linux-image-6 | grep -q . || apt-get update -qq >&2

fetch() {
	local series=$1 re=$2 pin=$3 pkg ver dir tmp rel m f
	pkg=${pin:-$(newest_pkg "$re")} || die "no package matches $re (apt-get update?)"
	ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
	dir=$CACHE/kernels/debian-$series
	if [[ -f $dir/.done && $(cat "$dir/package") == "$pkg=$ver" ]]; then
		log "debian $series cached: $pkg $ver"
		echo "$dir"
		return
	fi
	local t0=$SECONDS
	log "fetching $pkg $ver"
	rm -rf "$dir" && mkdir -p "$dir/modules"
	tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null)
	local pats=('./boot/vmlinuz-*')
	for m in "${MODULES[@]}"; do pats+=("*/$m.ko" "*/$m.ko.xz"); done
	dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" --wildcards "${pats[@]}" 2>/dev/null || true
	f=$(ls "$tmp"/boot/vmlinuz-*) || die "$pkg has no /boot/vmlinuz-*"
	cp "$f" "$dir/vmlinuz"
	rel=${f##*/vmlinuz-}
	echo "$rel" >"$dir/release"
	for m in "${MODULES[@]}"; do
		f=$(find "$tmp/lib/modules" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
		[[ -n $f ]] || die "$pkg has no module $m"
		case $f in
		*.xz) xz -dc "$f" >"$dir/modules/$m.ko" ;;
		*) cp "$f" "$dir/modules/$m.ko" ;;
		esac
		echo "$m" >>"$dir/modules/load"
	done
	# Every dependency must come earlier in the load order.
	local loaded=" " deps d
	for m in "${MODULES[@]}"; do
		deps=$(grep -a -o 'depends=[a-z0-9_,-]*' "$dir/modules/$m.ko" | head -1 | cut -d= -f2 | tr ',-' ' _')
		for d in $deps; do
			[[ $loaded == *" $d "* ]] || die "$pkg: $m depends on $d, which is not loaded before it"
		done
		loaded+="$m "
	done
	rm -rf "$tmp"
	echo "$pkg=$ver" >"$dir/package"
	echo "$((SECONDS - t0))" >"$dir/fetch-seconds"
	touch "$dir/.done"
	log "debian $series ($rel) fetched in $((SECONDS - t0))s"
	echo "$dir"
}

mkdir -p "$CACHE/kernels"
fetch 6.1 'linux-image-6\.1\.0-[0-9]+-amd64' "${FRAGSCOPE_VMTEST_PKG_6_1:-}"
fetch 6.12 'linux-image-6\.12\.[0-9]+\+deb[0-9]+-amd64' "${FRAGSCOPE_VMTEST_PKG_6_12:-}"
