# Thin targets over the real tools. Everything runs from .venv, which `make test` / `make demo` create.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
PIP     := $(VPY) -m pip
DEB_PKGS := keepalived tcpdump iproute2 iputils-ping procps nftables systemd prometheus
PYTEST_ARGS ?=
# The fuzz build needs clang and its compiler-rt (libFuzzer, AddressSanitizer); FUZZ_ARGS go to fuzz/run.py
# (e.g. FUZZ_ARGS="--scale 0.1" for a short run, "--only wire engine").
FUZZ_DEB_PKGS := clang-14 libclang-rt-14-dev
FUZZ_ARGS ?=

.PHONY: all deps venv build test unit bench lint demo debug fuzz fuzz-deps clean

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

# Coverage-guided fuzzing of every parser of untrusted bytes (docs/fuzzing.md): the extensions are rebuilt
# with clang's fuzzer and AddressSanitizer instrumentation, each harness in fuzz/ runs for its budget, and the
# normal build is put back whatever the fuzzers found (as for `make debug`); the target fails if a harness
# did. About 30 minutes on 2 cores.
fuzz-deps:
	@missing=""; for p in $(FUZZ_DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# (atheris comes with the venv: it is in the test extra, for the smoke run of every harness in `make test`.)
fuzz: deps fuzz-deps venv
	FASTVRRP_FUZZ=1 $(VPY) setup.py -q build_ext --inplace && \
	  $(VPY) fuzz/run.py $(FUZZ_ARGS); status=$$?; \
	  echo "restoring the normal build"; \
	  FASTVRRP_FORCE=1 $(VPY) setup.py -q build_ext --inplace || exit 1; \
	  exit $$status

bench: deps build
	$(VPY) -m pytest -q bench --benchmark-only --benchmark-columns=min,median,mean,rounds -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check fastvrrp tests bench fuzz
	$(VENV)/bin/ruff format --check fastvrrp tests bench fuzz
	$(VENV)/bin/mypy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cython-lint --max-line-length 110 fastvrrp/*.pyx fastvrrp/*.pxd

demo: deps build
	$(VENV)/bin/fastvrrp demo

clean:
	rm -rf build fastvrrp/*.so fastvrrp/*.c *.egg-info
