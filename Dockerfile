# Multi-stage build: a static fragscope on an empty base.
# The BPF objects are committed, so the build stage needs no clang.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /fragscope ./cmd/fragscope

FROM scratch
COPY --from=build /fragscope /fragscope
ENTRYPOINT ["/fragscope"]
CMD ["watch"]

# Run on a node (see README "Container"):
#   docker run --rm -it --pid=host \
#     --cap-add BPF --cap-add PERFMON --cap-add SYS_ADMIN --cap-add SYSLOG \
#     -v /sys/kernel:/sys/kernel -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
#     fragscope watch
