#!/bin/sh
# Generates the Python stubs of api/proto into ./gen (or $1) with Debian's
# protoc (protobuf-compiler, 3.21: proto3 `optional` works) and gRPC's
# Python plugin (protobuf-compiler-grpc); the well-known types come from
# libprotobuf-dev. Not python3-grpc-tools: its bundled protoc 3.5 rejects
# proto3 `optional`.
#   apt-get install protobuf-compiler protobuf-compiler-grpc libprotobuf-dev python3-grpcio python3-protobuf
set -eu
here=$(cd "$(dirname "$0")" && pwd)
proto="$here/../../api/proto"
out=${1:-"$here/gen"}
mkdir -p "$out"
cd "$proto"
protoc -I . -I /usr/include --python_out="$out" --grpc_out="$out" \
	--plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" tcpstate/v1/*.proto
