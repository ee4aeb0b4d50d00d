# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv and install the pinned requirements on first use (and
# again whenever a requirements file changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench fuzz deploy clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack

lint: $(STAMP)
	$(BIN)/cfn-lint infra/template.yaml

test: $(STAMP) lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Deploy to AWS: the data stack (infra/template.yaml), then Chalice; see docs/DEPLOY.md.
deploy: $(STAMP)
	$(BIN)/python -m infra.deploy --stage $(or $(STAGE),dev)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
