"""What ``import brainstate`` adds to ``import jax``, in fresh interpreters.

Target: at most about 0.1 s over ``import jax``. brainunit (which imports matplotlib) is never
imported by ``import brainstate``, no array is made at import, and the rarely used transforms
load on first access. ``python bench/bench_import.py [repeats]`` alternates the two commands
and prints the minima. Numbers include byte-compiling any module whose cached bytecode is
stale, so run it once first (or with ``PYTHONDONTWRITEBYTECODE`` unset).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from _timing import interleaved_minima

JAX_ONLY = "import jax"
WITH_BRAINSTATE = "import jax; import brainstate"


def _command(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _run(code: str) -> None:
    subprocess.run(_command(code), check=True)


@pytest.mark.benchmark(group="import")
def bench_import_brainstate(benchmark):
    # one fresh interpreter per round: a smoke run spawns one or two
    benchmark.pedantic(_run, args=(WITH_BRAINSTATE,), rounds=1, iterations=1)


def main(repeats: int = 7) -> None:
    for code in (JAX_ONLY, WITH_BRAINSTATE):  # warm the file cache and the bytecode
        _run(code)
    best = interleaved_minima({"jax": lambda: _run(JAX_ONLY),
                               "jax+brainstate": lambda: _run(WITH_BRAINSTATE)}, repeats)
    added = best["jax+brainstate"] - best["jax"]
    print(f"import jax:              {best['jax']:.3f} s (min of {repeats})")
    print(f"import jax + brainstate: {best['jax+brainstate']:.3f} s")
    print(f"added by brainstate:     {added:.3f} s  ({best['jax+brainstate'] / best['jax']:.2f}x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
