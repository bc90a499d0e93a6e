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

# newest_pkg prints the newest package name matching an extended regex
# (anchored) that the apt sources really offer (`apt-cache search` lists
# only packages with a record, not virtual names).
newest_pkg() {
	apt-cache search --names-only "^($1)\$" | awk '{print $1}' | sort -V | tail -1 | grep .
}
