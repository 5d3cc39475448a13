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

say() { echo "==> $*"; }
die() {
    echo "error: $1" >&2
    echo "next:  $2" >&2
    exit 1
}

what=${1:-all}
venv=${2:-.venv}
litellm_venv=${3:-.venv-litellm}
[[ $what == tools || $what == all ]] || die "usage: bash bench/setup.sh [tools|all] [VENV] [LITELLM_VENV]" "make bench"

if command -v wrk >/dev/null && { command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]]; }; then
    say "wrk and nginx already installed"
elif [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing the Debian packages wrk and nginx-light (about 20 s)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed (see above)" "check the apt sources, then run make bench again"
    apt-get install -y -qq --no-install-recommends wrk nginx-light >/dev/null ||
        die "apt-get install wrk nginx-light failed (see above)" "check the apt sources, then run make bench again"
else
    die "wrk and nginx are not on PATH, and this script installs them only as root with apt-get" \
        "sudo apt-get install -y wrk nginx-light"
fi
# The package may start a system nginx on :80; the benchmark never uses it.
if [[ $(id -u) -eq 0 && -x /etc/init.d/nginx ]] && /etc/init.d/nginx status >/dev/null 2>&1; then
    say "stopping the system nginx service (the benchmark runs its own)"
    /etc/init.d/nginx stop >/dev/null || true
fi

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
