# fragscope build, test and generation.
GO        ?= go
BPF_CLANG ?= clang
BPF_CFLAGS ?= -O2 -g -Wall -Werror
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)

.PHONY: all build generate check-generated test bench vmlinux clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o fragscope ./cmd/fragscope

# Regenerate the BPF objects and their Go bindings (needs clang and libbpf-dev).
generate:
	cd internal/probes && BPF_CLANG=$(BPF_CLANG) BPF_CFLAGS='$(BPF_CFLAGS)' $(GO) generate ./...

# CI: the committed objects must be what the committed C compiles to.
check-generated: generate
	git diff --exit-code -- internal/probes || { echo "generated BPF objects are stale: run make generate and commit" >&2; exit 1; }

# The test command the README documents; run as root so the BPF tests run.
test:
	$(GO) test -count=1 ./...

# Benchmarks: decode/aggregate speed and the live tracer's overhead per event.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./internal/bench/cmd/overhead

# Regenerate bpf/headers/x86/vmlinux.h from the running kernel's BTF.
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/headers/x86/vmlinux.h

clean:
	rm -f fragscope
