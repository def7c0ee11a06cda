#!/bin/sh
# The one build command of the suite: the Dockerfile, `make build` and the
# e2e tests all run it, so a broken image build shows up in `make test`.
#
#   deploy/build.sh [OUT_DIR] [PACKAGE...]
#
# Builds static binaries (no cgo) into OUT_DIR (default bin) with VERSION
# (default: git describe, else "dev") in each command's main.version, which
# every process reports as service.version.
set -eu
out=${1:-bin}
[ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then
  # Every command of the platform and of every service (make new-service's too).
  set -- ./platform/cmd/...
  for d in ./services/*/cmd; do set -- "$@" "$d/..."; done
fi
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
CGO_ENABLED=0 exec go build -ldflags "-X main.version=$version" -o "$out/" "$@"
