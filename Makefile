# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv with Python 3.13 and install the pinned requirements on
# first use (and again whenever a requirements file changes).

# Python 3.13: `python3.13` on PATH if it runs (a pyenv shim may exist without
# working), else a 3.13 that pyenv installed. Override with PYTHON=/path/to/python3.13.
PYTHON ?= $(shell \
	if python3.13 -c '' >/dev/null 2>&1; then command -v python3.13; exit 0; fi; \
	for candidate in $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13; do \
		if [ -x "$$candidate" ] && "$$candidate" -c '' >/dev/null 2>&1; then echo "$$candidate"; exit 0; fi; \
	done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint check cfn-lint bench fuzz deploy clean python gateway screenshots console-vendor asyncapi

python:
	@test -n "$(PYTHON)" || { echo "Python 3.13 is required: put python3.13 on PATH (or install it with pyenv install 3.13), or run make PYTHON=/path/to/python3.13"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' || { echo "Python 3.13 is required, $(PYTHON) is $$($(PYTHON) -V 2>&1)"; exit 1; }

$(STAMP): requirements.txt requirements-dev.txt | python
	@test -x $(BIN)/python && $(BIN)/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' \
		|| { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# make run [PORT=8000] [HOST=127.0.0.1] [FRESH=1]: state lives in .devstack/state/ (FRESH=1 starts empty).
run: $(STAMP)
	$(BIN)/python -m devstack --host $(HOST) --port $(PORT) $(if $(FRESH),--fresh)

# The edge gateway beside the agents (docs/GATEWAY.md): make gateway [CONTROL_PLANE_URL=http://127.0.0.1:8000]
# GATEWAY_API_KEY=<agent key> [GATEWAY_DB=gateway.db] [GATEWAY_PORT=3000] [GATEWAY_MAX_DB_MB=512] ...
# Settings given to make (or in the environment) reach the gateway as they are; the rest may come from a
# .env in this directory (the environment wins). CONTROL_PLANE_URL defaults to the local stack unless
# one of those sets it.
gateway: $(STAMP)
	$(if $(CONTROL_PLANE_URL),,$(if $(shell grep -sE '^[[:space:]]*(export[[:space:]]+)?CONTROL_PLANE_URL=' .env),,CONTROL_PLANE_URL=http://$(HOST):$(PORT))) \
		$(BIN)/python -m edge_gateway

# Static checks; `make test` runs them first. Add further linters as prerequisites here.
lint: cfn-lint check

# The layering (import-linter contracts in pyproject.toml), ruff over the whole tree (app, tests,
# bench, the local stack, agent and gateway) and mypy over chalicelib/ and app.py: zero findings.
check: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy

# cfn-lint the data stack template and the app as `chalice package` emits it (packaged
# against a throwaway stack deployed into in-process moto; see infra/package.py).
cfn-lint: $(STAMP)
	$(BIN)/python -m infra.package --check

# docs/asyncapi.json, the WebSocket's AsyncAPI document, from the event catalog (chalicelib/events/catalog.py);
# tests/unit/test_asyncapi.py fails while the committed file differs from what this writes.
asyncapi: $(STAMP)
	$(BIN)/python -m chalicelib.events.asyncapi

test: $(STAMP) lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The console's pictures in docs/console/ (docs/CONSOLE.md), taken by its browser tests at 1280x800.
screenshots: $(STAMP)
	CONSOLE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/browser/test_console_live.py

# Fetch the console's vendored libraries again from npm (npm pack) and check them against the pinned
# digests in chalicelib/console/static/vendor/VERSIONS.txt; nothing is fetched at run time.
CONSOLE_VENDOR := chalicelib/console/static/vendor
console-vendor:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent uplot@1.6.32 marked@18.3.0 dompurify@3.5.0 >/dev/null && \
	for f in *.tgz; do mkdir -p $${f%.tgz} && tar xzf $$f -C $${f%.tgz}; done && \
	cp uplot-1.6.32/package/dist/uPlot.iife.min.js $(CURDIR)/$(CONSOLE_VENDOR)/uplot-1.6.32.iife.min.js && \
	cp uplot-1.6.32/package/dist/uPlot.min.css $(CURDIR)/$(CONSOLE_VENDOR)/uplot-1.6.32.min.css && \
	cp uplot-1.6.32/package/LICENSE $(CURDIR)/$(CONSOLE_VENDOR)/uplot-1.6.32.LICENSE.txt && \
	cp marked-18.3.0/package/lib/marked.esm.js $(CURDIR)/$(CONSOLE_VENDOR)/marked-18.3.0.esm.js && \
	cp marked-18.3.0/package/LICENSE $(CURDIR)/$(CONSOLE_VENDOR)/marked-18.3.0.LICENSE.txt && \
	cp dompurify-3.5.0/package/dist/purify.min.js $(CURDIR)/$(CONSOLE_VENDOR)/purify-3.5.0.min.js && \
	cp dompurify-3.5.0/package/LICENSE $(CURDIR)/$(CONSOLE_VENDOR)/purify-3.5.0.LICENSE.txt && \
	rm -rf $$tmp
	cd $(CONSOLE_VENDOR) && grep -E '^  [0-9a-f]{64}  ' VERSIONS.txt | sed 's/^  //' | sha256sum -c

# Deploy to AWS: the data stack (infra/template.yaml), then Chalice; see docs/DEPLOY.md.
deploy: $(STAMP)
	$(BIN)/python -m infra.deploy --stage $(or $(STAGE),dev)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
