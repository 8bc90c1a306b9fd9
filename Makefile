# Hydra — developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PROTO_OUT := services/common/src
NPM_BIN := node_modules/.bin
# pytest workers (pytest-xdist), one test file each at a time: the stack tests mostly wait on
# their services, so two workers on two cores halve the suite's time. 0 runs in one process.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?= $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

.PHONY: help setup proto proto-check lint test demo bench bench-scale drill chart-check images clean frontend

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

# npm ci installs exactly the committed lock files and never rewrites them (npm install may),
# so a fresh clone's `make setup` leaves `git status` clean.
setup: $(UV) ## Create .venv and node_modules from the lock files and install the tools (idempotent)
	$(UV) sync --all-packages --frozen --quiet
	@if [ ! -x $(NPM_BIN)/buf ] || [ package-lock.json -nt node_modules/.installed ]; then \
		npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; fi
	@if [ -f frontend/package.json ]; then $(MAKE) --no-print-directory frontend; fi

frontend: ## Install and build the React front end into the API's static files
	@cd frontend && if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.installed ]; then \
		npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; fi
	cd frontend && npm run --silent build

TFS_STUBS := services/common/tfserving_stubs

proto: ## Generate the gRPC stubs from protos/ into the shared library (and TF Serving's)
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) \
		--grpc_python_out=$(PROTO_OUT) protos/hydra/v1/*.proto
	rm -rf $(TFS_STUBS)/tensorflow $(TFS_STUBS)/tensorflow_serving
	$(PY) deploy/tfserving_stubs.py $(TFS_STUBS)

proto-check: ## Fail when the generated stubs are stale
	@tmp=$$(mktemp -d); $(PY) -m grpc_tools.protoc -Iprotos --python_out=$$tmp --pyi_out=$$tmp \
		--grpc_python_out=$$tmp protos/hydra/v1/*.proto && \
	for f in $$tmp/hydra/v1/*; do \
		cmp -s $$f $(PROTO_OUT)/hydra/v1/$$(basename $$f) || { echo "stale stub: $$(basename $$f) (run make proto)"; exit 1; }; \
	done; rm -rf $$tmp; echo "stubs are fresh"
	@tmp=$$(mktemp -d); $(PY) deploy/tfserving_stubs.py $$tmp >/dev/null && \
	diff -r -q -x ruff.toml -x __pycache__ -x .ruff_cache $$tmp $(TFS_STUBS) || { echo "stale TF Serving stubs (run make proto)"; exit 1; }; \
	rm -rf $$tmp; echo "TF Serving stubs are fresh"

lint: setup ## ruff, mypy, buf lint and the front end's checks
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy  # one strict run over services/*/src, their tests, tests/ and bench/ (pyproject's files)
	cd protos && ../$(NPM_BIN)/buf lint
	$(PY) services/api/scripts/export_openapi.py --check
	@if [ -f frontend/package.json ]; then cd frontend && npm run --silent lint && npm run --silent check-gen; fi

test: setup proto-check ## Run every service's unit tests and the cross-service tests
	@if [ -f frontend/package.json ]; then cd frontend && npm test --silent; fi
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: setup ## Run the whole system locally on simulated hall data and print the URL
	$(VENV)/bin/hydra demo

bench: setup ## Run the benchmarks in production shape (10 min); figures go to bench/results/
	$(PY) -m bench.run

bench-scale: setup ## The API on 30 days of ePIC history in MariaDB; bench/results/scale.json
	$(PY) -m bench.scale_bench

drill: setup ## Long fault-injection drill; figures go to bench/results/drill.json
	$(PY) -m bench.drill

chart-check: setup ## helm lint, template, schema validation, promtool and image contents
	$(PY) deploy/check_chart.py
	$(PY) deploy/image_contents.py

IMAGE_TAG ?= dev

images: setup ## Build one container image per service, and the GPU trainer (needs a Docker engine)
	@for s in $$($(PY) -m hydra_common.plugins images); do \
		docker build -f deploy/Dockerfile --build-arg SERVICE=$$s -t hydra-$$s:$(IMAGE_TAG) . || exit 1; done
	docker build -f deploy/Dockerfile --build-arg SERVICE=trainer --build-arg VARIANT=gpu \
		-t hydra-trainer:$(IMAGE_TAG)-gpu .

clean: ## Remove local state (var/) and build outputs
	rm -rf var build dist .mypy_cache .ruff_cache
