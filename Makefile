# fragscope build, test and generation.
GO        ?= go
BPF_CLANG ?= clang
BPF_CFLAGS ?= -O2 -g -Wall -Werror
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)

.PHONY: all build generate check-generated test test-deps bench vmlinux clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o fragscope ./cmd/fragscope

# Regenerate the BPF objects and their Go bindings (needs clang and libbpf-dev).
generate:
	cd internal/probes && BPF_CLANG=$(BPF_CLANG) BPF_CFLAGS='$(BPF_CFLAGS)' $(GO) generate ./...
	cd internal/aggregate && $(GO) generate .

# CI: the committed objects must be what the committed C compiles to.
check-generated: generate
	git diff --exit-code -- internal/probes internal/aggregate || { echo "generated files (BPF objects, errno names) are stale: run make generate and commit" >&2; exit 1; }

# The test command the README documents; run as root so the BPF tests run.
test: test-deps
	$(GO) test -count=1 ./...

# Debian tools the tests drive: promtool and a real Prometheus (agent
# metrics), zsh (completion), groff (man page), systemd-analyze (the unit),
# docker.io and podman (the image tests), chromium (the report rendered
# headless). Installed only when missing
# and only as root; policy-rc.d keeps the package from starting its own
# Prometheus on :9090. Without them the tests skip naming the package, or
# fail under CI=true.
TEST_TOOLS := chromium:chromium promtool:prometheus prometheus:prometheus zsh:zsh groff:groff-base systemd-analyze:systemd docker:docker.io dockerd:docker.io podman:podman containerd:containerd runc:runc busybox:busybox-static
test-deps:
	@missing=; for t in $(TEST_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make test: installing$$missing"; \
		rc=/usr/sbin/policy-rc.d; had=; [ -e $$rc ] && had=1; \
		[ -n "$$had" ] || printf '#!/bin/sh\nexit 101\n' > $$rc && chmod +x $$rc; \
		{ apt-get install -y -qq $$missing >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; }; } \
			|| echo "make test: could not install$$missing: the tests that need them skip (or fail under CI=true)"; \
		[ -n "$$had" ] || rm -f $$rc; \
	fi

# Benchmarks: decode/aggregate speed, the live tracer's overhead per event, and
# the agent's idle cost, scrape time with 4096 cgroups and recorder growth.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./internal/bench/cmd/overhead
	$(GO) run ./internal/bench/cmd/agent

# Regenerate bpf/headers/x86/vmlinux.h from the running kernel's BTF.
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/headers/x86/vmlinux.h

clean:
	rm -f fragscope

# Container image (docs/container.md): the binary above on an empty base,
# built from a context holding only that binary, so nothing is pulled and no
# registry is needed. DOCKER=podman works too.
DOCKER ?= docker
IMAGE  ?= fragscope
.PHONY: image
image: build
	@ctx=$$(mktemp -d) && trap 'rm -rf "$$ctx"' EXIT && cp fragscope "$$ctx"/ && \
	$(DOCKER) build -q --target image -f Dockerfile -t $(IMAGE):$(VERSION) -t $(IMAGE):latest "$$ctx" >/dev/null && \
	echo "make image: $(IMAGE):$(VERSION), $$($(DOCKER) image inspect -f '{{.Size}}' $(IMAGE):$(VERSION)) bytes"

# Real kernels under QEMU (TCG): the Debian kernels of vmtest/kernels.lock and a 6.12
# fault-injection kernel built from linux-source-6.12 (vmtest/). Needs root,
# qemu-system-x86 and busybox-static; kernels are cached in
# $FRAGSCOPE_VMTEST_CACHE (default /var/cache/fragscope-vmtest), guest logs
# kept in $FRAGSCOPE_VMTEST_OUT (default /tmp/fragscope-vmtest/<time>).
.PHONY: vmtest vmtest-kernels vmtest-lock
vmtest:
	@start=$$(date +%s); rc=0; \
	t=$$(date +%s); vmtest/fetch-kernels.sh >/dev/null || exit 1; \
	echo "vmtest: Debian kernels ready in $$(( $$(date +%s) - t ))s"; \
	t=$$(date +%s); vmtest/build-kernel.sh >/dev/null || exit 1; \
	echo "vmtest: fault-injection kernel ready in $$(( $$(date +%s) - t ))s"; \
	FRAGSCOPE_VMTEST=1 $(GO) test -count=1 ./internal/vmtest -run VM -v -timeout 80m || rc=$$?; \
	$(GO) run ./internal/vmtest/cmd/matrix -w && echo "vmtest: results in vmtest/results.tsv, README kernel table updated"; \
	echo "make vmtest: $$(( $$(date +%s) - start ))s in all, exit $$rc"; exit $$rc

# Move vmtest/kernels.lock to the newest kernel of each series (review, commit).
vmtest-lock:
	vmtest/update-kernels-lock.sh

# Only fetch the Debian kernels and build the fault-injection kernel (cached).
vmtest-kernels:
	vmtest/fetch-kernels.sh
	vmtest/build-kernel.sh
