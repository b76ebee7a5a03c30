"""Build script: the only file that knows how to build the compiled core."""
import os

from setuptools import setup

NO_EXTENSIONS = os.environ.get("BRAINSTATE_NO_EXTENSIONS", "") not in ("", "0")
DEBUG = os.environ.get("BRAINSTATE_DEBUG_BUILD", "") not in ("", "0")

ext_modules = []
if not NO_EXTENSIONS:
    from Cython.Build import cythonize
    from setuptools import Extension

    macros = [("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []
    extra = ["-O0", "-g"] if DEBUG else ["-O2"]
    ext = Extension("brainstate._core", ["csrc/_core.pyx"], include_dirs=["csrc"],
                    define_macros=macros, extra_compile_args=extra)
    directives = {"language_level": 3, "embedsignature": True, "linetrace": DEBUG}
    ext_modules = cythonize([ext], compiler_directives=directives)

setup(ext_modules=ext_modules)
