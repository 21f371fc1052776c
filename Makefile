# Two entry points (README): `make demo` and `make test`. Everything else is a helper of those.
# Debian's own CPython (PGO+LTO build) starts and imports ~25% faster than a pyenv build; start-up is part of
# every vmtune run (libvirt runs the hook on each guest start). Fall back to python3 where it has no venv support.
PYTHON ?= $(shell /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null && echo /usr/bin/python3 || echo python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
SAMPLE_HOST  ?= samples/hosts/dual-xeon-ht.tar.gz
SAMPLE_GUEST ?= samples/xml/web01.xml
# `make deb` builds from a copy of the tree here and leaves the .deb in dist/ (both gitignored)
DEB_BUILD ?= build/deb
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# test-debian: Debian 12's python3-lxml/-typer/-rich/-libvirt under /usr/bin/python3, only dev tools from PyPI
DEBIAN_VENV ?= build/debian-venv
DEBIAN_PINS := $(DEBIAN_VENV)/debian-pins.txt
# Debian's tools with Debian's python3, never a python3 that comes first on the caller's PATH
DEBIAN_PATH := /usr/sbin:/usr/bin:/sbin:/bin

.PHONY: demo test test-debian deb lint unit e2e bench clean

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
	$(MAKE) test-debian

# The unit tests once more, on Debian's own runtime packages (the versions the .deb depends on). The pins
# make pip fail rather than shadow a Debian package with a PyPI one for a dev tool's sake.
test-debian: $(VENV)/.test-stamp
	[ -x $(DEBIAN_VENV)/bin/python ] || /usr/bin/python3 -m venv --system-site-packages $(DEBIAN_VENV)
	/usr/bin/python3 -c 'import importlib.metadata as m; [print(f"{p}=={m.version(p)}") for p in ("lxml", "typer", "rich", "click", "Pygments")]' > $(DEBIAN_PINS)
	$(DEBIAN_VENV)/bin/python -m pip install -q -c $(DEBIAN_PINS) pytest hypothesis jsonschema grimp sarif-tools matplotlib prometheus-client
	$(DEBIAN_VENV)/bin/python -m pip install -q --no-deps -e .
	$(DEBIAN_VENV)/bin/python -m pytest -q -p no:cacheprovider --ignore=tests/e2e --ignore=tests/packaging/test_deb.py $(PYTEST_ARGS)

deb:
	rm -rf $(DEB_BUILD) && mkdir -p $(DEB_BUILD)/vmtune-$(VERSION) dist
	tar -c --exclude=__pycache__ --exclude='*.egg-info' src packaging debian docs pyproject.toml README.md | tar -x -C $(DEB_BUILD)/vmtune-$(VERSION)
	cd $(DEB_BUILD)/vmtune-$(VERSION) && PATH=$(DEBIAN_PATH) dpkg-buildpackage -b -us -uc >../build.log 2>&1 \
		|| { tail -40 ../build.log; exit 1; }
	rm -f dist/vmtune_*.deb && cp $(DEB_BUILD)/vmtune_*.deb dist/
	@ls dist/vmtune_*.deb

bench: $(VENV)/.test-stamp
	$(BIN)/python bench/host_render.py
	-$(BIN)/python bench/placement.py
	$(BIN)/python bench/node_fit.py
	$(BIN)/python bench/xml_speed.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
