#!/bin/sh
# Builds the tcpstated container image with podman, offline: a static
# binary (CGO_ENABLED=0) copied into a FROM scratch image.
#   examples/container/build.sh [IMAGE]     (default tcpstated:latest)
# Run it where containers run:  podman run -p 8080:8080 -p 50051:50051 tcpstated
# Where `podman run` does not work, test the image's filesystem instead:
#   cid=$(podman create tcpstated) && mkdir root && podman export "$cid" | tar -x -C root
#   chroot root /tcpstated serve --data-dir=/data    # then curl 127.0.0.1:8080/healthz
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
image=${1:-tcpstated:latest}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
version=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo devel)
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$ctx/tcpstated" ./cmd/tcpstated)
cp "$here/Containerfile" "$ctx/Containerfile"
podman build --quiet --pull=never -t "$image" -f "$ctx/Containerfile" "$ctx"
