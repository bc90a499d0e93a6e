# shellcheck shell=bash
# Shared helpers for the vmtest scripts. Sourced, not run.
#
# Everything downloaded or built lives in the cache dir, outside the git
# tree, so CI can keep it between runs: FRAGSCOPE_VMTEST_CACHE, default
# /var/cache/fragscope-vmtest. A complete entry is marked by a ".done" file
# written last: an interrupted fetch or build is redone, never half-used.

VMTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$VMTEST_DIR/.." && pwd)
CACHE=${FRAGSCOPE_VMTEST_CACHE:-/var/cache/fragscope-vmtest}
export DEBIAN_FRONTEND=noninteractive

log() { printf '[vmtest %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# need_pkgs installs the Debian packages whose commands are missing.
# Arguments are command:package pairs.
need_pkgs() {
	local missing=() pair
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	apt-get update -qq >&2
	apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The guests' packages come through an apt configuration of our own
# (vmtest/apt-sources.list: suites, components, keyring), with its own
# state and cache under $CACHE/apt: the host's sources, pins and apt.conf.d
# never decide which kernel a test gets. Only the mirror is the host's
# (the URIs its apt already uses for Debian and Debian security), or
# FRAGSCOPE_VMTEST_MIRROR / FRAGSCOPE_VMTEST_SECURITY_MIRROR; what is
# downloaded is fixed by vmtest/kernels.lock (exact versions and sha256).
APT_DIR=$CACHE/apt
LOCK=$VMTEST_DIR/kernels.lock

# host_mirror SUFFIX prints the URI the host's apt uses for Debian releases
# whose name ends in SUFFIX ("-security"), or for the others ("").
host_mirror() {
	apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | sort -u |
		awk -v sec="$1" '$2 ~ /^(buster|bullseye|bookworm|trixie|forky|sid)/ {
			s = ($2 ~ /-security$/); if ((sec != "") == s) { sub(/\/$/, "", $1); print $1; exit } }'
}

# vm_apt_setup writes the private apt configuration and refreshes its
# package lists when they are missing or older than a day (or when
# FRAGSCOPE_VMTEST_APT_UPDATE=1).
vm_apt_setup() {
	local mirror sec
	need_pkgs gpgv:gpgv
	[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || { apt-get update -qq >&2; apt-get install -y -qq debian-archive-keyring >&2; }
	mirror=${FRAGSCOPE_VMTEST_MIRROR:-$(host_mirror "")}
	sec=${FRAGSCOPE_VMTEST_SECURITY_MIRROR:-$(host_mirror -security)}
	[[ -n $mirror && -n $sec ]] || die "no Debian mirror in the host's apt lists (apt-get update?); set FRAGSCOPE_VMTEST_MIRROR and FRAGSCOPE_VMTEST_SECURITY_MIRROR"
	mkdir -p "$APT_DIR"/{etc/apt.conf.d,etc/preferences.d,etc/trusted.gpg.d,etc/sources.list.d,state/lists/partial,cache/archives/partial}
	sed -e "s|@MIRROR@|$mirror|" -e "s|@SECURITY@|$sec|" "$VMTEST_DIR/apt-sources.list" >"$APT_DIR/etc/sources.list.new"
	cat >"$APT_DIR/apt.conf" <<-EOF
		Dir::Etc "$APT_DIR/etc/";
		Dir::Etc::main "/dev/null";
		Dir::Etc::Parts "$APT_DIR/etc/apt.conf.d/";
		Dir::Etc::SourceList "$APT_DIR/etc/sources.list";
		Dir::Etc::SourceParts "$APT_DIR/etc/sources.list.d/";
		Dir::Etc::Preferences "/dev/null";
		Dir::Etc::PreferencesParts "$APT_DIR/etc/preferences.d/";
		Dir::Etc::TrustedParts "$APT_DIR/etc/trusted.gpg.d/";
		Dir::State "$APT_DIR/state/";
		Dir::State::status "/dev/null";
		Dir::Cache "$APT_DIR/cache/";
		APT::Architecture "amd64";
		APT::Architectures { "amd64"; };
		Acquire::Languages "none";
		APT::Sandbox::User "root";
	EOF
	local stale=1
	if cmp -s "$APT_DIR/etc/sources.list.new" "$APT_DIR/etc/sources.list" && [[ -f $APT_DIR/state/updated ]] &&
		[[ -z $(find "$APT_DIR/state/updated" -mmin +1440) && ${FRAGSCOPE_VMTEST_APT_UPDATE:-0} != 1 ]]; then
		stale=0
	fi
	mv "$APT_DIR/etc/sources.list.new" "$APT_DIR/etc/sources.list"
	if ((stale)); then
		log "apt update (private lists: $APT_DIR, mirror $mirror)"
		vm_apt apt-get update -qq >&2 || die "apt-get update with $APT_DIR/apt.conf failed"
		touch "$APT_DIR/state/updated"
	fi
}

# vm_apt CMD ARGS: an apt command under the private configuration.
vm_apt() { APT_CONFIG=$APT_DIR/apt.conf "$@"; }

# lock_entries NAME prints the "package version sha256" lines of one
# kernel of vmtest/kernels.lock.
lock_entries() {
	awk -v n="$1" '$1 == n {print $2, $3, $4}' "$LOCK"
}

# lock_names prints the names in vmtest/kernels.lock (first field), once each.
lock_names() {
	awk '!/^#/ && NF {print $1}' "$LOCK" | awk '!seen[$0]++'
}

# download_locked NAME DIR downloads every package of NAME into DIR at its
# locked version and checks its sha256.
download_locked() {
	local name=$1 dir=$2 pkg ver sum got f n=0
	while read -r pkg ver sum; do
		(cd "$dir" && vm_apt apt-get download -q "$pkg=$ver" >/dev/null 2>"$dir/.err") ||
			die "$name: cannot download $pkg=$ver ($(tr '\n' ' ' <"$dir/.err")): the mirror no longer has the locked version; run vmtest/update-kernels-lock.sh and commit vmtest/kernels.lock"
		f=$(ls "$dir/${pkg}_"*.deb)
		got=$(sha256sum "$f" | cut -d' ' -f1)
		[[ $got == "$sum" ]] || die "$name: $f has sha256 $got, vmtest/kernels.lock says $sum"
		n=$((n + 1))
	done < <(lock_entries "$name")
	((n > 0)) || die "vmtest/kernels.lock has no entry $name"
	rm -f "$dir/.err"
}
