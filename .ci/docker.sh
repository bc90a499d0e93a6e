#!/usr/bin/env bash
# CI: the image against real engines (docs/container.md). Installs Debian's
# docker.io and podman, then runs TestImageDocker and TestImagePodman
# (cmd/fragscope/image_linux_test.go): a private dockerd (own data and exec
# roots, socket, pid file, --iptables=false, no bridge), `make image`, the
# agent started with the README's flags, scraped from the host, an ENOSPC
# netns failure on the host read back from the volume, podman's seccomp
# refusal; the tests stop and remove all of it. Run as root, before
# `make test`: with CI=true that fails those tests when the engines are
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PATH=/usr/local/go/bin:$PATH

rc=/usr/sbin/policy-rc.d
made_rc=
# The tests make their engines' roots under TMPDIR; a test killed by its
# timeout runs no cleanup, so whatever it left is stopped by pid file and
# removed here.
tmp=$(mktemp -d /tmp/fragscope-ci.XXXXXX)
cleanup() {
	for r in "$tmp"/fsp*/; do
		[ -d "$r/root" ] && podman --root "$r/root" --runroot "$r/run" --cgroup-manager cgroupfs \
			--events-backend file rm -f -a >/dev/null 2>&1 || true
	done
	for p in "$tmp"/fsd*/docker.pid; do
		[ -e "$p" ] || continue
		pid=$(cat "$p")
		kill "$pid" 2>/dev/null || continue
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	done
	awk -v d="$tmp/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
	rm -rf "$tmp"
	if [ -n "$made_rc" ]; then rm -f "$rc"; fi
}
trap cleanup EXIT

t0=$(date +%s)
# No systemd here: policy-rc.d stops the packages from starting their
# daemons (the tests start their own). One we did not make is left alone.
if [ ! -e "$rc" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$rc" && chmod +x "$rc"
	made_rc=1
fi
apt-get install -y -qq docker.io podman >/dev/null 2>&1 ||
	{ apt-get update -qq && apt-get install -y -qq docker.io podman >/dev/null; }
if [ -n "$made_rc" ]; then rm -f "$rc"; made_rc=; fi
echo "docker.sh: docker.io and podman installed in $(( $(date +%s) - t0 ))s"

t1=$(date +%s)
CI=true TMPDIR=$tmp go test -count=1 -v -timeout 10m -run '^TestImage(Docker|Podman)$' ./cmd/fragscope
echo "docker.sh: image tests in $(( $(date +%s) - t1 ))s, $(( $(date +%s) - t0 ))s in all"
