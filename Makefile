# Targets mirror the test tiers. Every target sets up what it needs on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
PYTEST_FLAGS ?= -q

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing switchman with dev extras (first run: ~1 min)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: install
install: $(STAMP) ## Create .venv and install the project (editable) with dev tools

.PHONY: demo
demo: $(STAMP) ## Run the gateway with two simulated vLLM backends (no cluster, no keys)
	$(BIN)/switchman demo

.PHONY: lint
lint: $(STAMP) ## ruff, ruff format --check, import-linter contracts, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m switchman.api.v1alpha1.crdgen --check
	$(BIN)/python deploy/kustomize/generate.py --check
	@# import-linter and mypy do not follow the editable-install finder: check a built copy.
	@rm -rf build/typecheck && $(BIN)/pip install --quiet --no-deps --target build/typecheck . 2>&1 | grep -v '^WARNING' || true
	cd build/typecheck && PYTHONPATH=. $(abspath $(BIN))/lint-imports --config $(CURDIR)/pyproject.toml
	MYPYPATH=build/typecheck $(BIN)/mypy --cache-dir build/mypy-cache -p switchman

.PHONY: crds
crds: $(STAMP) ## Regenerate crds/ from api/v1alpha1 and copy them into the Helm chart
	$(BIN)/python -m switchman.api.v1alpha1.crdgen
	cp crds/*.yaml charts/switchman/crds/

.PHONY: chart-crds
chart-crds: crds ## Same as crds (the chart's copies are checked identical by tests/unit/test_chart.py)

.PHONY: kustomize
kustomize: $(STAMP) ## Regenerate deploy/kustomize/base from the Helm chart's default values
	$(BIN)/python deploy/kustomize/generate.py

.PHONY: images
images: ## Build the operator and gateway images (needs Docker with BuildKit)
	docker build -f docker/operator.Dockerfile -t switchman/operator:0.1.0 .
	docker build -f docker/gateway.Dockerfile -t switchman/gateway:0.1.0 .

.PHONY: format
format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: test-unit
test-unit: $(STAMP) ## Unit tier: pure functions, no network
	$(BIN)/pytest $(PYTEST_FLAGS) tests/unit

REDIS_STAMP := $(VENV)/.redis-ready

$(REDIS_STAMP): tests/integration/setup_redis.sh tests/debian_packages.sh | $(STAMP)
	bash tests/integration/setup_redis.sh
	@touch $@

.PHONY: redis
redis: $(REDIS_STAMP) ## Install redis-server (Debian package) for the tenancy tests and bench

BENCH_TOOLS_STAMP := $(VENV)/.bench-tools-ready

$(BENCH_TOOLS_STAMP): bench/setup.sh tests/debian_packages.sh | $(STAMP)
	bash bench/setup.sh tools
	@touch $@

.PHONY: test-integration
test-integration: $(STAMP) $(REDIS_STAMP) $(BENCH_TOOLS_STAMP) ## Integration tier: gateway + simulators + fake providers + Redis on 127.0.0.1
	$(BIN)/pytest $(PYTEST_FLAGS) tests/integration

.PHONY: chaos
chaos: $(STAMP) ## Chaos tier: faults under load, guarantees asserted, figures in build/chaos/ (~1-2 min)
	$(BIN)/pytest $(PYTEST_FLAGS) tests/chaos

$(VLLM_STAMP): e2e/vllm/setup.sh e2e/vllm/build_tiny_model.py
	bash e2e/vllm/setup.sh $(VLLM_VENV)
	@touch $@

.PHONY: vllm-env
vllm-env: $(VLLM_STAMP) ## Install the real vLLM (CPU build) into .venv-vllm and build a tiny model

PROM_STAMP := $(VENV)/.prometheus-ready

$(PROM_STAMP): e2e/prometheus/setup.sh tests/debian_packages.sh | $(STAMP)
	bash e2e/prometheus/setup.sh
	@touch $@

.PHONY: prometheus
prometheus: $(PROM_STAMP) ## Install prometheus + promtool (Debian package) for the e2e tier

.PHONY: test-e2e
test-e2e: $(STAMP) $(VLLM_STAMP) $(PROM_STAMP) ## End-to-end tier: real vLLM and Prometheus with the gateway
	SWITCHMAN_VLLM_VENV=$(abspath $(VLLM_VENV)) $(BIN)/pytest $(PYTEST_FLAGS) e2e

.PHONY: test
test: lint test-unit test-integration chaos test-e2e ## Everything CI runs

.PHONY: bench
bench: $(STAMP) $(REDIS_STAMP) ## Benchmarks, side by side with a relay and LiteLLM (results land in bench/results/)
	bash bench/setup.sh all $(VENV) .venv-litellm
	$(BIN)/python -m bench

.PHONY: clean
clean: ## Remove virtualenvs and caches
	rm -rf $(VENV) $(VLLM_VENV) .venv-litellm build .pytest_cache .mypy_cache .ruff_cache
