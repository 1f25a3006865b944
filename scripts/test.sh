#!/usr/bin/env bash
# The project's test command (README, .ci/run): every test, unit and
# process-level, Node and Python interop, under Node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3 python3-openssl iproute2 openvpn babeld iputils-ping nftables miniupnpd-nftables miniupnpc
rm -rf dist && npx tsc -p .  # no stale compiled tests
# --test-timeout bounds each test file as a whole, not only each test: the
# longest file, deploy-guide (about 5 minutes), needs more than 300 s. Tests
# that wait set their own, shorter bounds.
exec node --test --test-timeout=900000 dist/test/*.test.js
