#!/usr/bin/env bash
# conformance/ci.sh: the conformance steps of CI (see README.md).
#   1. go test ./...           the oracle reproduces upstream kube-proxy's own expected output; determinism
#   2. golden -check           every committed golden file is what kube-proxy v1.37.2 produces now
#   3. difftest (seed 1, 300)  svc2rules equals kube-proxy on random inputs, every implemented backend
# Extra arguments are passed to difftest (e.g. -n 1000, -seed 7).
set -euo pipefail
cd "$(dirname "$0")"
go test ./...
go run ./cmd/golden -check
go run ./cmd/difftest -seed 1 -n 300 "$@"
