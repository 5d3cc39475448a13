#!/usr/bin/env bash
# Make `redis-server` available for the integration tier (the tenancy tests start their own on a
# free port of 127.0.0.1 with a temporary directory: tests/integration/redisproc.py). Called by
# `make redis` (and `make test-integration`) as:
#
#     bash tests/integration/setup_redis.sh
#
# Installs the Debian `redis-server` package (Redis 7) when `redis-server` is not on PATH: only as
# root through apt-get; anyone else is told what to install. The system service the package sets
# up (on :6379) is never used by the tests: this script stops and disables it. Safe to run again:
# with Redis installed and no service running it only checks (< 1 s).
set -euo pipefail
# shellcheck source=tests/debian_packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/../debian_packages.sh"

[[ $# -eq 0 ]] || die "usage: bash tests/integration/setup_redis.sh" "run it via: make redis"

if command -v redis-server >/dev/null; then
    say "redis-server already installed ($(command -v redis-server))"
else
    apt_install "make redis" "redis-server is not on PATH" \
        "sudo apt-get install -y redis-server   (or put Redis 7's redis-server on PATH)" redis-server
fi
# Debian's package enables and starts a system Redis on :6379; the tests never use it.
stop_service redis-server "the tests"

say "redis ready: $(redis-server --version | head -1)"
