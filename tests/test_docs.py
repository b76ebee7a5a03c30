"""Every code example on the documentation pages (``docs/**/*.md``) runs.

The ``python`` blocks of one page run in order in one namespace, so a page reads like a
session. A block written with ``>>>`` prompts is a doctest (its printed output is checked,
``...`` matches anything); any other ``python`` block runs as a script and must not raise.
A page whose examples need optional packages names them in a comment,
``<!-- requires: braintools brainpy -->``; without them its examples are skipped (under
``CI=true``, where they are installed, that is a failure). Code in another language must be one the pages are allowed to show without running (shell
commands, output, configuration), so that no example escapes the run by its fence.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts) if DOCS.is_dir() else []
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                   re.M | re.S)
NOT_RUN = {"bash", "console", "text", "toml", "ini", "yaml", "json", "none"}
# MyST directives: the page structure (toctree, images, includes, the API reference)
DIRECTIVES = {"{toctree}", "{eval-rst}", "{include}", "{figure}", "{image}", "{note}",
              "{warning}", "{tip}", "{important}", "{seealso}", "{admonition}", "{list-table}",
              "{contents}"}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def blocks(page: pathlib.Path) -> list[tuple[int, str, str]]:
    """``(line, language, code)`` for every fenced block of ``page``."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m["info"].strip().split(" ")[0], m["body"])
            for m in FENCE.finditer(text)]


def run_page(page: pathlib.Path) -> int:
    """Run the page's python blocks in one namespace; return how many ran."""
    name = page.relative_to(DOCS).as_posix()
    globs: dict = {"__name__": "__docs__"}
    parser, ran = doctest.DocTestParser(), 0
    for line, lang, code in blocks(page):
        if lang != "python":
            continue
        ran += 1
        where = f"{name}:{line}"
        if re.search(r"^\s*>>> ", code, re.M):
            test = parser.get_doctest(code, globs, where, str(page), line)
            runner = doctest.DocTestRunner(optionflags=FLAGS)
            out: list[str] = []
            runner.run(test, out=out.append, clear_globs=False)
            globs.update(test.globs)  # a DocTest runs in a copy of the namespace
            assert runner.failures == 0, f"doctest failed at {where}:\n" + "".join(out)
        else:
            exec(compile(code, where, "exec"), globs)
    return ran


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_examples_run(page, tmp_path, monkeypatch):
    needs = re.search(r"<!-- requires: ([^>]*) -->", page.read_text())
    missing = [m for m in (needs[1].split() if needs else ()) if importlib.util.find_spec(m) is None]
    if missing:
        message = f"{page.name} needs {', '.join(missing)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (installed in CI)")
        pytest.skip(message)
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    run_page(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_shows_no_unrun_code(page):
    for line, lang, _ in blocks(page):
        assert lang == "python" or lang in NOT_RUN or lang in DIRECTIVES, (
            f"{page.name}:{line}: a ```{lang} block would not run; write Python as ```python, "
            f"or use one of {sorted(NOT_RUN)} for what is not run")


def test_the_pages_are_found():
    if not DOCS.is_dir():
        pytest.skip("docs/ is not next to the tests (installed wheel)")
    assert len(PAGES) >= 10
    ran = sum(lang == "python" for page in PAGES for _, lang, _ in blocks(page))
    assert ran >= 20, f"only {ran} python examples on the documentation pages"


def test_a_failing_example_fails(tmp_path):
    # the harness itself must be able to fail: a wrong printed value and a raising script
    bad = tmp_path / "bad.md"
    bad.write_text("# t\n\n```python\n>>> 1 + 1\n3\n```\n")
    global DOCS
    saved, DOCS = DOCS, tmp_path
    try:
        with pytest.raises(AssertionError, match="doctest failed at bad.md:3"):
            run_page(bad)
        bad.write_text("```python\nraise KeyError('x')\n```\n")
        with pytest.raises(KeyError):
            run_page(bad)
    finally:
        DOCS = saved
