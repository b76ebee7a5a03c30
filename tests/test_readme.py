"""Every Python example in the README runs; one that raises names its exception in its text."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if README.exists() else []


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
    code = BLOCKS[index]
    try:
        exec(compile(code, f"README.md[block {index}]", "exec"), {"__name__": "readme"})
    except Exception as exc:  # the example must say it raises this
        assert type(exc).__name__ in code, f"README block {index} raised {exc!r}"


def test_readme_has_examples():
    if not README.exists():
        pytest.skip("README.md is not next to the tests (installed wheel)")
    assert len(BLOCKS) >= 5
