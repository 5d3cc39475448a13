#!/usr/bin/env bash
# What the side-by-side benchmark (bench/compare.py) needs beyond the project's own virtualenv.
# Called by `make bench` (everything) and by `make test-integration` (`tools` only, for the
# bench smoke test):
#
#     bash bench/setup.sh [tools|all] [VENV] [LITELLM_VENV]
#
# tools: the Debian packages `wrk` (the load generator) and `nginx-light` (the fake upstream),
#        installed with apt-get when missing (root only; anyone else is told what to install).
#        The package's own nginx service is never used: the benchmark starts nginx on free
#        ports with a config of its own; a running system nginx is stopped.
# all:   tools, plus the bench extra in VENV (matplotlib for the PNG) and LiteLLM proxy at a
#        pinned version in a virtualenv of its own (LITELLM_VENV, default .venv-litellm), so
#        its many pinned dependencies never meet the project's.
# Safe to run again: with everything present it only checks (< 1 s).
set -euo pipefail

LITELLM_VERSION=1.80.17 # the newest release whose `proxy` extra installs from the package index

# shellcheck source=tests/debian_packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/debian_packages.sh"

what=${1:-all}
venv=${2:-.venv}
litellm_venv=${3:-.venv-litellm}
[[ $what == tools || $what == all ]] || die "usage: bash bench/setup.sh [tools|all] [VENV] [LITELLM_VENV]" "make bench"

if command -v wrk >/dev/null && { command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]]; }; then
    say "wrk and nginx already installed"
else
    apt_install "make bench" "wrk and nginx are not on PATH" "sudo apt-get install -y wrk nginx-light" \
        wrk nginx-light
fi
# The package may start a system nginx on :80; the benchmark never uses it.
stop_service nginx "the benchmarks"

[[ $what == tools ]] && exit 0

say "installing the bench extra (matplotlib) into $venv"
"$venv/bin/pip" install --quiet -e ".[bench]" || die "pip install -e .[bench] failed" "see the pip output above"

if [[ -x $litellm_venv/bin/litellm ]] && "$litellm_venv/bin/pip" show litellm 2>/dev/null | grep -q "^Version: $LITELLM_VERSION\$"; then
    say "LiteLLM $LITELLM_VERSION already in $litellm_venv"
else
    say "installing LiteLLM proxy $LITELLM_VERSION into $litellm_venv (first run: a few minutes)"
    python3 -m venv "$litellm_venv"
    "$litellm_venv/bin/pip" install --quiet --upgrade pip
    "$litellm_venv/bin/pip" install --quiet "litellm[proxy]==$LITELLM_VERSION" ||
        die "installing litellm[proxy]==$LITELLM_VERSION failed" "see the pip output above; or run: python -m bench compare --targets direct relay switchman-1 switchman-N"
fi
say "bench ready: $(wrk -v 2>&1 | head -1); $(/usr/sbin/nginx -v 2>&1); litellm $LITELLM_VERSION"
