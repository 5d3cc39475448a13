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
# shellcheck source=tests/debian_packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../tests/debian_packages.sh"

[[ $# -eq 0 ]] || die "usage: bash e2e/prometheus/setup.sh" "run it via: make prometheus"

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    say "prometheus already installed ($(command -v prometheus))"
else
    # No recommends: they add prometheus-node-exporter, one more service the tests do not use.
    apt_install "make prometheus" "prometheus and promtool are not on PATH" \
        "sudo apt-get install -y prometheus   (or put Prometheus 2.x's prometheus and promtool on PATH; or set SWITCHMAN_SKIP_PROMETHEUS=1 to skip the test on purpose)" \
        prometheus
fi
# Debian's package enables and starts a system Prometheus on :9090; the test never uses it.
stop_service prometheus "the tests"

say "checking promtool"
promtool --version 2>&1 | head -1 | sed 's/^/    /'
say "prometheus ready: $(prometheus --version 2>&1 | head -1)"
