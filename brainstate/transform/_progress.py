"""``ProgressBar``: progress reports from inside compiled loops, through a host callback.

A loop given ``pbar=`` counts its finished iterations in the carry and, every ``freq``
iterations (and at the last one), calls back to the host with ``jax.debug.callback`` from
inside a ``lax.cond`` branch, so the other iterations pay one compare and no host round trip.
The loop's first iteration also calls back (``begin``), so the clock starts when the loop does,
not at the first report. The host side draws a ``tqdm`` bar when tqdm is installed
(``pip install brainstate[progress]``) and otherwise prints plain-text lines to stderr (redrawn
in place on a terminal), at most one per ``min_interval`` seconds, with the rate and the ETA.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ProgressBar"]

_DEFAULT_COUNT = 20


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _tqdm_available() -> bool:
    return importlib.util.find_spec("tqdm") is not None


class ProgressBar:
    """A progress bar for ``scan``, ``for_loop`` and their checkpointed variants.

    Parameters
    ----------
    freq : int, optional
        Report every ``freq`` iterations (the last iteration always reports).
    count : int, optional
        Report about ``count`` times over the whole loop. Cannot be combined with ``freq``.
        With neither, the loop reports about 20 times.
    desc : str or (str, callable), optional
        The description. A pair ``(fmt, fn)`` formats ``fmt`` with the dict returned by
        ``fn({'i': i, 'carry': carry, 'y': y})``; ``fn`` runs inside the traced loop body (it
        may compute from the carry and the step output), ``fmt.format(**d)`` runs on the host.
    file : file-like, optional
        Where the plain-text fallback (and tqdm) write; ``sys.stderr`` by default.
    min_interval : float
        Smallest number of seconds between two plain-text lines (the last one always prints).
    use_tqdm : bool, optional
        ``None`` (default): tqdm when installed, plain text otherwise. ``True``: require tqdm.
        ``False``: always plain text.
    clock : callable, optional
        A zero-argument function returning seconds (``time.monotonic`` by default), read on
        the host when the loop starts and at each report of the plain-text display; tqdm keeps
        its own clock.
    **tqdm_kwargs
        Passed to ``tqdm.tqdm`` (``total`` is set from the loop length).

    Raises
    ------
    TypeError
        If ``freq``/``count`` are not ints, ``desc`` is neither a string nor a pair of a string
        and a callable, or ``clock`` is not callable.
    ValueError
        If ``freq``/``count`` are not positive or both are given, or a ``desc`` sequence does
        not have two elements.
    ImportError
        If ``use_tqdm=True`` and tqdm is not installed.

    Notes
    -----
    A loop's ``pbar=`` also accepts ``True`` (a default bar) and an int ``n`` (report every
    ``n`` iterations). The plain-text line reads ``desc: done/total (pct%) [elapsed<eta,
    rate]``; elapsed time counts from the loop's first iteration.

    Differs from upstream: a ``freq`` larger than the loop, or a ``count`` larger than the
    number of iterations, is accepted (the last iteration always reports) instead of raising;
    ``freq``/``count`` must be ints (upstream takes any value); the plain-text display also
    reports in loops under ``vmap`` (one report per update, the first lane's values).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> total = brainstate.State(jnp.zeros(()))
    >>> def step(x):
    ...     total.value = total.value + x
    >>> pbar = brainstate.transform.ProgressBar(freq=500, use_tqdm=False)
    >>> _ = brainstate.transform.for_loop(step, jnp.ones(1000), pbar=pbar)  # doctest: +SKIP
    """

    __module__ = "brainstate.transform"

    def __init__(self, freq: int | None = None, count: int | None = None,
                 desc: Any = None, *, file: Any = None, min_interval: float = 0.1,
                 use_tqdm: bool | None = None, clock: Callable[[], float] | None = None,
                 **tqdm_kwargs: Any) -> None:
        for name, v in (("freq", freq), ("count", count)):
            if v is None:
                continue
            if not _is_int(v):
                raise TypeError(f"ProgressBar({name}=...) must be an int, got "
                                f"{type(v).__name__} {v!r}.")
            if v < 1:
                raise ValueError(f"ProgressBar({name}=...) must be >= 1, got {v}.")
        if freq is not None and count is not None:
            raise ValueError(f"ProgressBar takes freq or count, not both (got freq={freq}, "
                             f"count={count}); drop one of them.")
        _check_desc(desc)
        if clock is not None and not callable(clock):
            raise TypeError(f"ProgressBar(clock=...) must be a function returning seconds, got "
                            f"{type(clock).__name__} {clock!r}.")
        if use_tqdm and not _tqdm_available():
            raise ImportError("ProgressBar(use_tqdm=True) needs tqdm: "
                              "pip install 'brainstate[progress]'.")
        self.freq = None if freq is None else int(freq)
        self.count = None if count is None else int(count)
        self.desc = desc
        self.file = file
        self.min_interval = float(min_interval)
        self.use_tqdm = _tqdm_available() if use_tqdm is None else bool(use_tqdm)
        self.clock = time.monotonic if clock is None else clock
        for k in ("total", "iterable"):
            tqdm_kwargs.pop(k, None)
        self.tqdm_kwargs = tqdm_kwargs

    def __repr__(self) -> str:
        return f"ProgressBar(freq={self.freq}, count={self.count}, desc={self.desc!r})"

    @property
    def print_freq(self) -> int | None:
        """``freq`` under its upstream name."""
        return self.freq

    @property
    def print_count(self) -> int | None:
        """``count`` under its upstream name."""
        return self.count

    def init(self, n: int) -> "_ProgressRunner":
        """A runner for a loop of ``n`` iterations (one per traced loop)."""
        n = int(n)
        if self.freq is not None:
            freq = self.freq
        else:
            freq = max(1, math.ceil(n / (self.count or _DEFAULT_COUNT)))
        return _ProgressRunner(self, n, freq)


def _check_desc(desc: Any) -> None:
    if desc is None or isinstance(desc, str):
        return
    if not isinstance(desc, (tuple, list)):
        raise TypeError("ProgressBar(desc=...) must be a string or a pair (format_string, "
                        f"function), got {type(desc).__name__} {desc!r}.")
    if len(desc) != 2:
        raise ValueError("ProgressBar(desc=...) as a sequence must be a pair (format_string, "
                         f"function), got {len(desc)} elements: {desc!r}.")
    if not isinstance(desc[0], str) or not callable(desc[1]):
        raise TypeError("ProgressBar(desc=...) must be a pair (format_string, function), got "
                        f"({type(desc[0]).__name__}, {type(desc[1]).__name__}): {desc!r}.")


def as_runner(pbar: Any, n: int, where: str) -> "_ProgressRunner | None":
    """The runner for a loop's ``pbar=`` (None/False, True, a ProgressBar or a positive int)."""
    if pbar is None or pbar is False:
        return None
    if pbar is True:
        return ProgressBar().init(n)
    if isinstance(pbar, ProgressBar):
        return pbar.init(n)
    if _is_int(pbar):
        if pbar < 1:
            raise ValueError(f"{where}: pbar={pbar} must be >= 1 (report every pbar steps).")
        return ProgressBar(freq=int(pbar)).init(n)
    raise TypeError(f"{where}: pbar must be True, a ProgressBar or an int (report every n "
                    f"steps), got {type(pbar).__name__} {pbar!r}.")


class _ProgressRunner:
    """Per-loop progress state: the traced step hook and the host-side display."""

    def __init__(self, bar: ProgressBar, n: int, freq: int) -> None:
        self.bar = bar
        self.n = n
        self.freq = freq
        self._lock = threading.Lock()
        self._pos = 0
        self._tqdm = None
        self._active = False
        self._t0 = 0.0
        self._last_print = -math.inf
        self._line_len = 0

    # --- inside the traced loop body ---

    def begin(self, i: Any) -> Any:
        """Start the clock at the first iteration (traced); returns ``i``, which the reports use.

        ``i`` (the number of finished iterations, an int32 scalar) comes back out of the
        ``lax.cond``, so every report computed from it runs after the start callback.
        """
        def start(i):
            jax.debug.callback(self.host_start)
            return i

        return jax.lax.cond(i == 0, start, lambda i: i, i)

    def data(self, i: Any, carry: Any, y: Any) -> dict:
        """The values ``desc``'s function computes from the loop (traced)."""
        desc = self.bar.desc
        if desc is None or isinstance(desc, str):
            return {}
        d = desc[1]({"i": i, "carry": carry, "y": y})
        if not isinstance(d, dict):
            raise TypeError("ProgressBar desc function must return a dict of values to format, "
                            f"got {type(d).__name__}.")
        return d

    def step(self, done: Any, data: dict) -> None:
        """Report ``done`` finished iterations when due (traced; ``done`` is an int32 scalar)."""
        due = (done % self.freq == 0) | (done == self.n)
        # Under vmap: one report showing the first lane's values, not one report per lane.
        from brainstate.transform._error_if import unvmap_first

        data = jax.tree.map(unvmap_first, data)

        def report(operands):
            jax.debug.callback(self.host_update, *operands)

        jax.lax.cond(due, report, lambda operands: None, (done, data))

    # --- on the host ---

    def host_start(self) -> None:
        """The loop started (again): open a fresh display and start the clock."""
        with self._lock:
            self._open()

    def host_update(self, done: Any, data: dict | None = None) -> None:
        """Move the display to ``done`` finished iterations (idempotent; a restart re-opens)."""
        done = int(np.asarray(done))
        with self._lock:
            # Not open (no start seen), or a smaller count than the last one: the loop was
            # started again after a run that did not finish. An equal count is a repeat.
            if not self._active or done < self._pos:
                self._open()
            self._pos = done
            text = self._describe(data)
            if self._tqdm is not None:
                if text is not None:
                    self._tqdm.set_description(text, refresh=False)
                self._tqdm.update(done - self._tqdm.n)
            else:
                now = self.bar.clock()
                if done >= self.n or now - self._last_print >= self.bar.min_interval:
                    self._last_print = now
                    self._print(done, text, now)
            if done >= self.n:
                self._close()

    def _describe(self, data: dict | None) -> str | None:
        desc = self.bar.desc
        if desc is None:
            return None
        if isinstance(desc, str):
            return desc
        values = {k: (v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v)
                  for k, v in (data or {}).items()}
        return desc[0].format(**values)

    def _stream(self) -> Any:
        return self.bar.file if self.bar.file is not None else sys.stderr

    def _open(self) -> None:
        self._close()
        self._active = True
        self._pos = 0
        self._t0 = self.bar.clock()
        self._last_print = -math.inf
        self._line_len = 0
        if self.bar.use_tqdm:
            from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no type hints

            kw = dict(self.bar.tqdm_kwargs)
            kw.setdefault("file", self._stream())
            if isinstance(self.bar.desc, str):
                kw.setdefault("desc", self.bar.desc)
            self._tqdm = tqdm(total=self.n, **kw)

    def _print(self, done: int, text: str | None, now: float) -> None:
        label = text if text is not None else f"Running for {self.n:,} iterations"
        pct = 100.0 * done / self.n if self.n else 100.0
        elapsed = max(now - self._t0, 0.0)
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        eta = _format_seconds((self.n - done) / rate) if rate else "?"
        line = (f"{label}: {done:,}/{self.n:,} ({pct:.0f}%) "
                f"[{_format_seconds(elapsed)}<{eta}, {_format_rate(rate)}]")
        stream = self._stream()
        isatty = getattr(stream, "isatty", None)
        if isatty is not None and isatty():
            # A terminal: redraw one line in place, end it when the loop is done.
            pad = " " * max(self._line_len - len(line), 0)
            self._line_len = len(line)
            stream.write("\r" + line + pad + ("\n" if done >= self.n else ""))
        else:
            stream.write(line + "\n")
        stream.flush()

    def _close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        self._active = False
        self._pos = 0


def _format_seconds(seconds: float) -> str:
    """``mm:ss`` or ``h:mm:ss`` (as tqdm)."""
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(max(int(seconds), 0), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _format_rate(rate: float | None) -> str:
    """Iterations per second, or seconds per iteration when slower than one per second."""
    if not rate:
        return "?it/s"
    return f"{rate:.2f}it/s" if rate >= 1.0 else f"{1.0 / rate:.2f}s/it"


def counter_init() -> Any:
    """The initial iteration counter a loop with a progress bar carries."""
    return jnp.zeros((), jnp.int32)


def describe_callable(runner: "_ProgressRunner | None") -> Callable | None:
    """``runner.data`` when the description needs loop values, else None."""
    if runner is None:
        return None
    desc = runner.bar.desc
    return runner.data if isinstance(desc, (tuple, list)) else None
