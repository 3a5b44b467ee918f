# Thin targets over the real tools. Everything runs from .venv, which `make test` / `make demo` create.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
PIP     := $(VPY) -m pip
DEB_PKGS := keepalived tcpdump iproute2 iputils-ping procps nftables systemd prometheus
PYTEST_ARGS ?=

.PHONY: all deps venv build test unit bench lint demo debug clean chaos

all: build

# Debian packages the tests and the demo need (keepalived is the live interop peer; systemd brings
# systemd-analyze, which checks the unit in dist/systemd).
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.stamp: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip 'setuptools>=77' wheel 'Cython>=3.0.11,<4'
	$(PIP) install -q -e '.[test,lint]'
	touch $@

venv: $(VENV)/.stamp

# Rebuild the extensions in place (an editable install does not rebuild on .pyx edits).
build: venv
	$(VPY) setup.py -q build_ext --inplace

test: deps build
	$(VPY) -m pytest -q $(PYTEST_ARGS)

unit: build
	$(VPY) -m pytest -q tests/unit tests/sim $(PYTEST_ARGS)

# The debug leg: bounds checks and assertions compiled in, then the unit and sim suites. The normal build is
# put back whatever the tests say (a debug build left in place would make every later run slow), and the
# target fails if either the debug build or the tests failed.
debug: deps venv
	FASTVRRP_DEBUG=1 $(VPY) setup.py -q build_ext --inplace && \
	  $(VPY) -m pytest -q tests/unit tests/sim $(PYTEST_ARGS); status=$$?; \
	  echo "restoring the normal build"; \
	  FASTVRRP_FORCE=1 $(VPY) setup.py -q build_ext --inplace || exit 1; \
	  exit $$status

bench: deps build
	$(VPY) -m pytest -q bench --benchmark-only --benchmark-columns=min,median,mean,rounds -p no:cacheprovider $(PYTEST_ARGS)

# The chaos suite at full size (tests/chaos; make test runs its light twins): 1,000 instances reloaded every
# second for a minute, the 100-reload soak, 255 x 10 ms under a CPU quota, with the light cases as well. It
# holds the machine-wide lock other heavy runs take, so measurements do not share two cores.
chaos: deps build
	flock /tmp/fastvrrp-heavy.lock env FASTVRRP_CHAOS_HEAVY=1 $(VPY) -m pytest -q -rxX tests/chaos $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check fastvrrp tests bench
	$(VENV)/bin/ruff format --check fastvrrp tests bench
	$(VENV)/bin/mypy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cython-lint --max-line-length 110 fastvrrp/*.pyx fastvrrp/*.pxd

demo: deps build
	$(VENV)/bin/fastvrrp demo

clean:
	rm -rf build fastvrrp/*.so fastvrrp/*.c *.egg-info
