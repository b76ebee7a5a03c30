"""Build script: the only file that knows how to build the compiled extensions.

* ``brainstate._core`` (Cython): the state runtime's hot paths.
* ``brainstate._event_cpu`` (C++): event-driven spike propagation kernels for XLA:CPU, built
  against the XLA FFI headers that jaxlib ships (``jaxlib/include``). Without jaxlib at build
  time it is left out and the pure-JAX kernels run instead.
"""
import os
import sys

from setuptools import setup

NO_EXTENSIONS = os.environ.get("BRAINSTATE_NO_EXTENSIONS", "") not in ("", "0")
DEBUG = os.environ.get("BRAINSTATE_DEBUG_BUILD", "") not in ("", "0")
# BRAINSTATE_SANITIZE=address,undefined: build with ASan/UBSan; run the result with the
# sanitizer runtimes preloaded, as .ci/sanitize does (GCC)
SANITIZE = os.environ.get("BRAINSTATE_SANITIZE", "").strip()
SAN_FLAGS = ([f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all",
              "-g", "-O1"] if SANITIZE else [])


def _jaxlib_include():
    try:
        import jaxlib
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(jaxlib.__file__), "include")
    return path if os.path.exists(os.path.join(path, "xla", "ffi", "api", "ffi.h")) else None


ext_modules = []
if not NO_EXTENSIONS:
    from Cython.Build import cythonize
    from setuptools import Extension

    macros = [("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []
    extra = SAN_FLAGS or (["-O0", "-g"] if DEBUG else ["-O2"])
    ext = Extension("brainstate._core", ["csrc/_core.pyx"], include_dirs=["csrc"],
                    define_macros=macros, extra_compile_args=extra, extra_link_args=SAN_FLAGS)
    directives = {"language_level": 3, "embedsignature": True, "linetrace": DEBUG}
    ext_modules = cythonize([ext], compiler_directives=directives)

    ffi_include = _jaxlib_include()
    if ffi_include is None:
        print("brainstate: jaxlib's XLA FFI headers not found at build time; building without "
              "the native event kernels (the pure-JAX ones run instead)", file=sys.stderr)
    else:
        if sys.platform == "win32":
            include_dirs, flags = [ffi_include], ["/std:c++17", "/O2"]
        else:  # jaxlib's headers as system headers: their own warnings are not ours
            include_dirs = []
            flags = ["-std=c++17", "-isystem", ffi_include] + (
                SAN_FLAGS or (["-O0", "-g"] if DEBUG else ["-O3"]))
        # optional: without a C++ compiler the build goes on and the pure-JAX kernels run
        # (tests/test_event_native.py fails the compiled leg of a build that lost them)
        ext_modules.append(Extension("brainstate._event_cpu", ["csrc/_event_cpu.cc"],
                                     include_dirs=include_dirs, language="c++",
                                     extra_compile_args=flags, extra_link_args=SAN_FLAGS,
                                     optional=True))

setup(ext_modules=ext_modules)
