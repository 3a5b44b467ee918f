"""Build the compiled half of fastvrrp.

`_wire` is everything about bytes (codec, checksums, templates, frames); `_engine` is the steady-state hot
loop (batched receive and send, the deadline heap, the fast path). FASTVRRP_DEBUG=1 turns bounds checks and
assertions on; FASTVRRP_ANNOTATE=1 writes the Cython annotation HTML; FASTVRRP_FORCE=1 recompiles.

FASTVRRP_FUZZ=1 is the fuzz build (docs/fuzzing.md): clang with `-fsanitize=address,fuzzer-no-link`, so
libFuzzer (through atheris) sees the edges and comparisons of the compiled code and AddressSanitizer stops
at the first out-of-bounds access. Such a build only loads with fuzz/run.py's LD_PRELOAD; `make fuzz` puts
the normal build back afterwards.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup


def env(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


DEBUG = env("FASTVRRP_DEBUG")
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "embedsignature": True,
}
CFLAGS = ["-O0", "-g", "-UNDEBUG"] if DEBUG else ["-O2"]
LDFLAGS: list[str] = []
FUZZ = env("FASTVRRP_FUZZ")
if FUZZ:
    SAN = os.environ.get("FASTVRRP_FUZZ_SANITIZE", "address,fuzzer-no-link")
    os.environ.setdefault("CC", os.environ.get("FASTVRRP_CLANG", "clang-14"))
    os.environ.setdefault("LDSHARED", os.environ["CC"] + " -shared")
    CFLAGS = ["-O1", "-g", "-fno-omit-frame-pointer", f"-fsanitize={SAN}"]
    LDFLAGS = [f"-fsanitize={SAN}"]

extensions = [
    Extension("fastvrrp._wire", ["fastvrrp/_wire.pyx"], extra_compile_args=CFLAGS, extra_link_args=LDFLAGS),
    Extension("fastvrrp._engine", ["fastvrrp/_engine.pyx"], extra_compile_args=CFLAGS, extra_link_args=LDFLAGS),
    Extension("fastvrrp._probe", ["fastvrrp/_probe.pyx"], extra_compile_args=CFLAGS, extra_link_args=LDFLAGS),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        annotate=env("FASTVRRP_ANNOTATE"),
        force=env("FASTVRRP_FORCE") or DEBUG or FUZZ,
    ),
)
