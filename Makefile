# Two entry points (README): `make demo` and `make test`. Everything else is a helper of those.
# Debian's own CPython (PGO+LTO build) starts and imports ~25% faster than a pyenv build; start-up is part of
# every vmtune run (libvirt runs the hook on each guest start). Fall back to python3 where it has no venv support.
PYTHON ?= $(shell /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null && echo /usr/bin/python3 || echo python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
SAMPLE_HOST  ?= samples/hosts/dual-xeon-ht.tar.gz
SAMPLE_GUEST ?= samples/xml/web01.xml

.PHONY: demo test lint unit e2e bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo-stamp: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-stamp: $(BIN)/python pyproject.toml
	scripts/libvirt-up.sh --install-only
	$(BIN)/python -m pip install -q -e '.[dev,live]'
	touch $@

demo: $(VENV)/.demo-stamp
	$(BIN)/vmtune host --sysfs $(SAMPLE_HOST) --domains samples/tenants --map
	$(BIN)/vmtune plan $(SAMPLE_GUEST) --sysfs $(SAMPLE_HOST) --domains samples/tenants --explain

lint: $(VENV)/.test-stamp
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(VENV)/.test-stamp lint
	scripts/libvirt-up.sh
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; scripts/libvirt-down.sh; exit $$rc

bench: $(VENV)/.test-stamp
	$(BIN)/python bench/host_render.py
	$(BIN)/python bench/placement.py
	$(BIN)/python bench/xml_speed.py

clean:
	rm -rf $(VENV) build src/*.egg-info
