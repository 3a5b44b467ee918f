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

.PHONY: all deps venv build test unit bench bench-gate bench-gate-baseline bench-density lint demo debug clean chaos fuzz \
        fuzz-deps

all: build

# Debian packages the tests and the demo need (keepalived is the live interop peer; systemd brings
# systemd-analyze, which checks the unit in dist/systemd).
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Cython is pinned: the compiled code, and so the figures of `make bench-gate`, depend on its version (README).
$(VENV)/.stamp: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip 'setuptools>=77' wheel 'Cython==3.3.2'
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
	$(VPY) -m pytest -q bench --ignore=bench/test_bench_density.py --benchmark-only --benchmark-columns=min,median,mean,rounds -p no:cacheprovider $(PYTEST_ARGS)

# The regression gate (README "Benchmarks as a regression gate"): the fast, low-noise suites, each figure a
# same-run ratio (bench/gate.py), compared with the stored baseline by pytest-benchmark; fails on a
# regression of more than GATE_TOLERANCE percent of any ratio's best round. GATE_JSON keeps this run's figures.
# GATE_SEND: the engine's batched advert send against the kernel's sendto() (root: a veth in namespaces).
# GATE_LAB: CPU per advert of fastvrrp against keepalived at 255 x 10 ms on the namespace lab (root, keepalived
# and tcpdump: `make deps`), about 40 s, judged against its own baseline with GATE_LAB_TOLERANCE: keepalived's
# cost moves with the load of the machine, so these ratios spread far more than the others (README).
# `GATE_SEND= GATE_LAB=` leaves them out on a runner that cannot make namespaces.
GATE_SEND      ?= bench/test_bench_ratios.py::test_advert_send_engine bench/test_bench_ratios.py::test_advert_send_kernel
GATE_LAB       ?= bench/test_bench_ratios.py::test_cpu_per_advert
GATE_BENCH     := bench/test_bench_calibration.py bench/test_bench_wire.py bench/test_bench_engine.py \
                  bench/test_bench_config.py bench/test_bench_metrics.py::test_render_1000_instances \
                  bench/test_bench_metrics.py::test_render_without_keepalived_families $(GATE_SEND)
GATE_BASELINE  ?= bench/baseline/gate.json
GATE_TOLERANCE ?= 50
GATE_JSON      ?= build/bench-gate.json
GATE_LAB_BASELINE  ?= bench/baseline/gate-lab.json
GATE_LAB_TOLERANCE ?= 200
GATE_LAB_JSON      ?= build/bench-gate-lab.json
GATE_ARGS       = --benchmark-only -p no:cacheprovider --benchmark-columns=min,median,rounds --benchmark-sort=name

bench-gate: build
	mkdir -p $(dir $(GATE_JSON)) $(dir $(GATE_LAB_JSON))
	FASTVRRP_BENCH_GATE=1 $(VPY) -m pytest -q $(GATE_BENCH) $(GATE_ARGS) --benchmark-json=$(GATE_JSON) \
	  --benchmark-compare=$(GATE_BASELINE) --benchmark-compare-fail=min:$(GATE_TOLERANCE)% $(PYTEST_ARGS)
	if [ -n "$(strip $(GATE_LAB))" ]; then \
	  FASTVRRP_BENCH_GATE=1 $(VPY) -m pytest -q $(GATE_LAB) $(GATE_ARGS) --benchmark-json=$(GATE_LAB_JSON) \
	    --benchmark-compare=$(GATE_LAB_BASELINE) --benchmark-compare-fail=min:$(GATE_LAB_TOLERANCE)% $(PYTEST_ARGS); \
	fi

# Refresh the stored baselines (commit the files it writes); run it on an otherwise idle machine.
bench-gate-baseline: build
	FASTVRRP_BENCH_GATE=1 $(VPY) -m pytest -q $(GATE_BENCH) $(GATE_ARGS) --benchmark-json=$(GATE_BASELINE) $(PYTEST_ARGS)
	if [ -n "$(strip $(GATE_LAB))" ]; then \
	  FASTVRRP_BENCH_GATE=1 $(VPY) -m pytest -q $(GATE_LAB) $(GATE_ARGS) --benchmark-json=$(GATE_LAB_BASELINE) \
	    $(PYTEST_ARGS); \
	fi

# Density side by side with keepalived (bench/test_bench_density.py), about 5 to 10 minutes; run it on an
# otherwise quiet machine.
bench-density: deps build
	$(VPY) -m pytest -q bench/test_bench_density.py --benchmark-only -p no:cacheprovider $(PYTEST_ARGS)

# The chaos suite at full size (tests/chaos; make test runs its light twins): 1,000 instances reloaded every
# second for a minute, the 100-reload soak, 255 x 10 ms under a CPU quota, with the light cases as well. Run
# it on an otherwise quiet machine.
chaos: deps build
	FASTVRRP_CHAOS_HEAVY=1 $(VPY) -m pytest -q -rxX tests/chaos $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check fastvrrp tests bench fuzz
	$(VENV)/bin/ruff format --check fastvrrp tests bench fuzz
	$(VENV)/bin/mypy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cython-lint --max-line-length 110 fastvrrp/*.pyx fastvrrp/*.pxd

demo: deps build
	$(VENV)/bin/fastvrrp demo

clean:
	rm -rf build fastvrrp/*.so fastvrrp/*.c *.egg-info
