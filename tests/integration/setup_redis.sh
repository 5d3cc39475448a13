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

say() { echo "==> $*"; }
die() {
    echo "error: $1" >&2
    echo "next:  $2" >&2
    exit 1
}

[[ $# -eq 0 ]] || die "usage: bash tests/integration/setup_redis.sh" "run it via: make redis"
root=false
[[ $(id -u) -eq 0 ]] && root=true

if command -v redis-server >/dev/null; then
    say "redis-server already installed ($(command -v redis-server))"
elif $root && command -v apt-get >/dev/null; then
    say "installing the Debian redis-server package (about 30 seconds)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq ||
        die "apt-get update failed (see its output above)" "check the apt sources, then run make redis again"
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null ||
        die "apt-get install redis-server failed (see its output above)" \
            "check the apt sources, then run make redis again"
else
    die "redis-server is not on PATH, and this script installs it only as root with apt-get" \
        "sudo apt-get install -y redis-server   (or put Redis 7's redis-server on PATH)"
fi

# Debian's package enables and starts a system Redis on :6379 (systemd, or its init script where
# systemd is not PID 1). The tests never use it: stop it and keep it stopped.
if [[ -d /run/systemd/system ]] && systemctl list-unit-files redis-server.service >/dev/null 2>&1; then
    if systemctl is-active --quiet redis-server || systemctl is-enabled --quiet redis-server 2>/dev/null; then
        if $root; then
            say "stopping and disabling the system redis-server service (the tests run their own)"
            systemctl disable --now redis-server >/dev/null 2>&1 ||
                die "could not stop the redis-server service" "systemctl disable --now redis-server"
        else
            say "note: a system redis-server service is running or enabled; the tests do not need it"
        fi
    fi
elif [[ -x /etc/init.d/redis-server ]]; then
    if /etc/init.d/redis-server status >/dev/null 2>&1; then
        if $root; then
            say "stopping the system redis-server service (the tests run their own)"
            /etc/init.d/redis-server stop >/dev/null ||
                die "could not stop the redis-server service" "/etc/init.d/redis-server stop"
        else
            say "note: a system redis-server service is running; the tests do not need it"
        fi
    fi
    if $root && command -v update-rc.d >/dev/null && compgen -G '/etc/rc[2-5].d/S*redis-server' >/dev/null; then
        say "disabling the system redis-server service at boot"
        update-rc.d redis-server disable >/dev/null 2>&1 || true
    fi
fi

say "redis ready: $(redis-server --version | head -1)"
