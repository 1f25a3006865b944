#!/usr/bin/env bash
# The project's test command (README, .ci/run): every test, unit and
# process-level, Node and Python interop, under Node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3 python3-openssl iproute2 openvpn babeld iputils-ping nftables miniupnpd-nftables miniupnpc
rm -rf dist && npx tsc -p .  # no stale compiled tests
exec node --test --test-timeout=300000 dist/test/*.test.js
