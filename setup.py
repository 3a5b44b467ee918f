"""Build the compiled half of fastvrrp.

`_wire` is everything about bytes (codec, checksums, templates, frames); `_engine` is the steady-state hot
loop (batched receive and send, the deadline heap, the fast path). FASTVRRP_DEBUG=1 turns bounds checks and
assertions on; FASTVRRP_ANNOTATE=1 writes the Cython annotation HTML; FASTVRRP_FORCE=1 recompiles.
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

extensions = [
    Extension("fastvrrp._wire", ["fastvrrp/_wire.pyx"], extra_compile_args=CFLAGS),
    Extension("fastvrrp._engine", ["fastvrrp/_engine.pyx"], extra_compile_args=CFLAGS),
    Extension("fastvrrp._probe", ["fastvrrp/_probe.pyx"], extra_compile_args=CFLAGS),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        annotate=env("FASTVRRP_ANNOTATE"),
        force=env("FASTVRRP_FORCE") or DEBUG,
    ),
)
