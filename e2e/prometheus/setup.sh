#!/usr/bin/env bash
# Make `prometheus` and `promtool` available for the e2e tier (e2e/test_prometheus.py). Called by
# `make prometheus` (and `make test-e2e`) as:
#
#     bash e2e/prometheus/setup.sh
#
# Installs the Debian `prometheus` package (Prometheus 2.x, promtool included) when `prometheus`
# is not on PATH: only as root through apt-get; anyone else is told what to install. The test
# starts its own Prometheus on a free port of 127.0.0.1 with a temporary data dir, so the system
# service the package sets up (on :9090) is never needed: this script stops and disables it.
# Safe to run again: with Prometheus installed and no service running it only checks (< 1 s).
set -euo pipefail

say() { echo "==> $*"; }
die() {
    echo "error: $1" >&2
    echo "next:  $2" >&2
    exit 1
}

[[ $# -eq 0 ]] || die "usage: bash e2e/prometheus/setup.sh" "run it via: make prometheus"
root=false
[[ $(id -u) -eq 0 ]] && root=true

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    say "prometheus already installed ($(command -v prometheus))"
elif $root && command -v apt-get >/dev/null; then
    say "installing the Debian prometheus package (prometheus + promtool, about 1 minute)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq ||
        die "apt-get update failed (see its output above)" "check the apt sources, then run make prometheus again"
    # No recommends: they add prometheus-node-exporter, one more service the tests do not use.
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null ||
        die "apt-get install prometheus failed (see its output above)" \
            "check the apt sources, then run make prometheus again"
else
    die "prometheus and promtool are not on PATH, and this script installs them only as root with apt-get" \
        "sudo apt-get install -y prometheus   (or put Prometheus 2.x's prometheus and promtool on PATH; or set SWITCHMAN_SKIP_PROMETHEUS=1 to skip the test on purpose)"
fi

# Debian's package enables and starts a system Prometheus on :9090 through systemd (or its
# init script where systemd is not PID 1). The test never uses it: stop it and keep it stopped.
if [[ -d /run/systemd/system ]] && systemctl list-unit-files prometheus.service >/dev/null 2>&1; then
    if systemctl is-active --quiet prometheus || systemctl is-enabled --quiet prometheus 2>/dev/null; then
        if $root; then
            say "stopping and disabling the system prometheus service (the test runs its own)"
            systemctl disable --now prometheus >/dev/null 2>&1 ||
                die "could not stop the prometheus service" "systemctl disable --now prometheus"
        else
            say "note: a system prometheus service is running or enabled; the test does not need it (sudo systemctl disable --now prometheus)"
        fi
    fi
elif [[ -x /etc/init.d/prometheus ]]; then
    if /etc/init.d/prometheus status >/dev/null 2>&1; then
        if $root; then
            say "stopping the system prometheus service (the test runs its own)"
            /etc/init.d/prometheus stop >/dev/null ||
                die "could not stop the prometheus service" "/etc/init.d/prometheus stop"
        else
            say "note: a system prometheus service is running; the test does not need it (sudo service prometheus stop)"
        fi
    fi
    if $root && command -v update-rc.d >/dev/null && compgen -G '/etc/rc[2-5].d/S*prometheus' >/dev/null; then
        say "disabling the system prometheus service at boot"
        update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
fi

say "checking promtool"
promtool --version 2>&1 | head -1 | sed 's/^/    /'
say "prometheus ready: $(prometheus --version 2>&1 | head -1)"
