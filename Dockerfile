# fragscope image: a static binary on an empty base (docs/container.md).
#
# Two ways to build it:
#
#   make image
#       Builds ./fragscope on the host (version from git describe) and runs
#       `docker build --target image` on a context holding only that binary.
#       Nothing is pulled, so it works without a registry, with the legacy
#       builder (Docker 20.10's default) and with BuildKit.
#
#   DOCKER_BUILDKIT=1 docker build --target source --build-arg VERSION=$(git describe --always --dirty) -t fragscope .
#       Builds from source in golang:1.26-bookworm (needs a registry).
#       BuildKit is needed: the legacy builder runs every stage before the
#       target, and the `image` stage needs the prebuilt binary.

# Metadata both ways share. The agent is the default command: its data dir
# is a volume so recordings outlive the container, and its metrics stay on
# loopback (run with --network host, or pass --listen :9436).
FROM scratch AS base
VOLUME ["/var/lib/fragscope"]
ENTRYPOINT ["/fragscope"]
CMD ["agent"]

FROM base AS image
COPY fragscope /fragscope

# The BPF objects are committed, so the source build needs no clang.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /fragscope ./cmd/fragscope

FROM base AS source
COPY --from=build /fragscope /fragscope
