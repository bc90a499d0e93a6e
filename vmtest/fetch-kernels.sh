#!/usr/bin/env bash
# Fetches the Debian guest kernels of `make vmtest`, exactly as
# vmtest/kernels.lock names them (package, version, sha256), through the
# private apt configuration of lib.sh, and unpacks only what the guests
# need (never installs anything):
#   $CACHE/kernels/locked/<name>-<key>/vmlinuz
#   .../release          (uname -r)
#   .../name             (<name>)
#   .../package          (the lock's lines for <name>)
#   .../modules/*.ko     (decompressed)
#   .../modules/load     (insmod order)
# <name> is the lock's first field (debian-5.10, debian-6.1, ...), <key> a
# hash of its lock lines: an entry is never rewritten, so runs of different
# checkouts sharing the cache (CI, other worktrees) cannot swap kernels
# under each other. With arguments only those names are fetched. Prints the
# kernel directories on stdout. With --cached first, nothing is fetched (no
# apt, no network): the cached kernels are printed, and one not in the
# cache is an error.
#
# Layouts handled: modules under /lib/modules (bullseye, bookworm) or
# /usr/lib/modules (trixie and later); modules compressed with xz or zstd;
# from 6.19 on the kernel and its modules in two packages (linux-binary-X,
# linux-modules-X; the lock names both). The modules loaded are nf_conntrack
# and whatever its depends= list needs, recursively, so renames and removals
# (6.15 folded crc32c_generic and libcrc32c into the crc32 library, built in)
# need no list here.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROOT_MODULE=nf_conntrack

need_pkgs xz:xz-utils zstd:zstd

# modinfo_depends KO: the module's own depends= list, space-separated.
modinfo_depends() {
	grep -a -o 'depends=[a-z0-9_,-]*' "$1" | head -1 | cut -d= -f2 | tr ',-' ' _'
}

# modinfo_softdeps KO: the names of its "softdep=pre: ..." (libcrc32c's
# crc32c before 6.15: a crypto name that modprobe resolves by alias).
modinfo_softdeps() {
	grep -a -o 'softdep=pre: [a-z0-9_ -]*' "$1" | head -1 | cut -d: -f2
}

# alias_module DIR NAME: the module in DIR declaring alias=NAME, if any.
alias_module() {
	local f
	f=$(grep -l -a -z -x -e "alias=$2" -e "alias=crypto-$2" "$1"/*.ko 2>/dev/null | head -1) || true
	[[ -z $f ]] || basename "$f" .ko
}

fetch() {
	local name=$1 dir tmp rel f t0=$SECONDS
	dir=$CACHE/kernels/locked/$name-$(lock_entries "$name" | sha256sum | cut -c1-12)
	if [[ -f $dir/.done ]]; then
		log "$name cached: $(head -1 "$dir/package" | cut -d' ' -f1-2)"
		echo "$dir"
		return
	fi
	((cached_only)) && die "$name is not in $CACHE/kernels (make vmtest-kernels fetches it)"
	log "fetching $name: $(lock_entries "$name" | cut -d' ' -f1-2 | tr '\n' ' ')"
	rm -rf "$dir" && mkdir -p "$dir/modules"
	tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
	download_locked "$name" "$tmp"
	# The kernel: /boot/vmlinuz-<release> up to 6.18, /usr/lib/modules/<release>/vmlinuz
	# in 6.19+'s linux-binary package.
	local pats=('./boot/vmlinuz-*' './usr/lib/modules/*/vmlinuz')
	for d in net/netfilter net/ipv4/netfilter net/ipv6/netfilter lib crypto; do
		pats+=("./lib/modules/*/kernel/$d/*" "./usr/lib/modules/*/kernel/$d/*")
	done
	for f in "$tmp"/*.deb; do
		dpkg-deb --fsys-tarfile "$f" | tar -x -C "$tmp" --wildcards --no-anchored "${pats[@]}" 2>/dev/null || true
	done
	f=$(ls "$tmp"/boot/vmlinuz-* "$tmp"/usr/lib/modules/*/vmlinuz 2>/dev/null | head -1) || true
	[[ -n $f ]] || die "$name: no /boot/vmlinuz-* or /usr/lib/modules/*/vmlinuz in $(ls "$tmp"/*.deb | xargs -n1 basename | tr '\n' ' ')"
	cp "$f" "$dir/vmlinuz"
	case $f in
	*/boot/vmlinuz-*) rel=${f##*/vmlinuz-} ;;
	*) rel=${f%/vmlinuz}; rel=${rel##*/} ;;
	esac
	echo "$rel" >"$dir/release"
	# Decompress every candidate module once, then walk the dependencies.
	local mods=$tmp/ko
	mkdir -p "$mods"
	while IFS= read -r f; do
		local base=${f##*/} m
		m=${base%%.ko*}
		m=${m//-/_}
		case $f in
		*.ko.xz) xz -dc "$f" >"$mods/$m.ko" ;;
		*.ko.zst) zstd -qdc "$f" >"$mods/$m.ko" ;;
		*.ko) cp "$f" "$mods/$m.ko" ;;
		esac
	done < <(find "$tmp" -path "*/modules/$rel/*" -name '*.ko*')
	[[ -f $mods/$ROOT_MODULE.ko ]] || die "$name: no module $ROOT_MODULE in the package"
	local order=() seen=" "
	visit() {
		local m=$1 d
		[[ $seen == *" $m "* ]] && return
		seen+="$m "
		[[ -f $mods/$m.ko ]] || die "$name: $ROOT_MODULE needs module $m, which is not in kernel/{net/*netfilter,lib,crypto}"
		for d in $(modinfo_softdeps "$mods/$m.ko"); do
			d=$(alias_module "$mods" "$d")
			[[ -z $d ]] || visit "$d" # none: built in
		done
		for d in $(modinfo_depends "$mods/$m.ko"); do visit "$d"; done
		order+=("$m")
	}
	visit "$ROOT_MODULE"
	for m in "${order[@]}"; do
		cp "$mods/$m.ko" "$dir/modules/"
		echo "$m" >>"$dir/modules/load"
	done
	rm -rf "$tmp"
	lock_entries "$name" >"$dir/package"
	echo "$name" >"$dir/name"
	echo "$((SECONDS - t0))" >"$dir/fetch-seconds"
	touch "$dir/.done"
	log "$name ($rel) fetched in $((SECONDS - t0))s; modules: ${order[*]}"
	echo "$dir"
}

cached_only=0
if [[ ${1:-} == --cached ]]; then
	cached_only=1
	shift
else
	vm_apt_setup
	mkdir -p "$CACHE/kernels/locked"
fi
names=("$@")
((${#names[@]})) || mapfile -t names < <(lock_names | grep '^debian-')
for n in "${names[@]}"; do fetch "$n"; done
