"""Concurrency soak: many threads reading, writing, hooking, compiling and tracing states at once.

The workload keeps to what is legal across threads:

* every thread owns private states and is the only one to touch them; traces (``jit``,
  ``StatefulFunction``, ``make_jaxpr``) read and write private states;
* shared states are read and written eagerly, with whole values, by several threads, while
  other threads register, toggle and remove hooks on them (and global hooks), and one thread
  traces functions reading the last of them over and over (a trace holds the states it
  touches for its thread: the others keep reading whole values and their writes are kept);
* one compiled function reading a read-only shared state is traced before the threads start
  and then only called.

What is illegal must fail loudly: a tracer written from a raw ``jax.jit`` (shared or private
state) raises ``TraceContextError``, a write a ``write_before`` hook vetoes raises
``HookCancellationError``, a state created inside a trace raises ``TraceContextError`` when
read afterwards, and none of them leaves a trace in the state.

A watchdog joins every thread with a timeout; on a timeout it dumps all thread stacks and
fails. Exceptions raised in threads are collected and reported. The short soak runs by
default; the 30-second one is marked ``slow``.

What other threads see of a state while one thread traces it is tested in
``tests/test_trace_threads.py``.
"""

from __future__ import annotations

import faulthandler
import gc
import tempfile
import threading
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import HookCancellationError, TraceContextError
from brainstate import _impl
from brainstate.transform import StatefulFunction, for_loop, jit, make_jaxpr

N_SHARED = 3
_TRACER_MSG = "JAX tracer was written to"
_POISON_MSG = "created inside a traced function"
_VETO_MSG = "negative codes are vetoed"


# --- values ---------------------------------------------------------------------------------
# A shared value is a small tree whose every element holds one integer code (writer, sequence):
# a read that mixes two writes shows up as two codes.


def _tree(code) -> dict:
    return {
        "a": jnp.full((4,), code, jnp.int32),
        "b": (jnp.full((2, 3), code, jnp.int32), jnp.asarray(code, jnp.int32)),
    }


_TREEDEF = jax.tree.structure(_tree(0))


def _code(tree) -> int:
    """The one code a shared value carries; raises AssertionError on a torn or foreign tree."""
    assert jax.tree.structure(tree) == _TREEDEF, f"tree structure changed: {tree!r}"
    codes = set()
    for leaf in jax.tree.leaves(tree):
        assert not isinstance(leaf, jax.core.Tracer), f"a tracer leaked into a state: {leaf!r}"
        codes.update(int(c) for c in np.asarray(leaf).ravel())
    assert len(codes) == 1, f"torn value: leaves carry codes {sorted(codes)}"
    return codes.pop()


# --- the soak -------------------------------------------------------------------------------


class _Soak:
    """Shared fixtures of one run: states, bookkeeping, the thread bodies and the watchdog."""

    def __init__(self, duration: float, watchdog: float):
        self.duration = duration
        self.watchdog = watchdog
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.violations: list[str] = []
        self.counts: dict[str, int] = {}
        # shared states: code 0 is the initial value of each
        self.shared = [brainstate.State(_tree(0), name=f"shared{k}") for k in range(N_SHARED)]
        self.written = [{0} for _ in range(N_SHARED)]
        # shared[0]: a permanent write_after counter and a veto of negative codes
        self.after_calls = 0
        self.successes_0 = 0
        self.shared[0].register_hook("write_after", self._count_after, name="soak_counter")
        self.shared[0].register_hook("write_before", self._veto_negative, name="soak_veto")
        for st in self.shared[1:]:
            st.hooks  # create each manager now: see test_concurrent_first_register_hook
        self.base_hooks = [len(st.list_hooks()) for st in self.shared]
        # read-only shared state behind a compiled function traced before the threads start
        self.ro = brainstate.State(jnp.arange(8, dtype=jnp.float32), name="read_only")
        self.ro_fn = jit(lambda x: (self.ro.value * x).sum())
        self.ro_arg = jnp.full((8,), 2.0, jnp.float32)
        self.ro_expected = 56.0  # 2 * (0 + 1 + ... + 7)
        assert float(self.ro_fn(self.ro_arg)) == self.ro_expected

    # -- bookkeeping --
    def bump(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def violate(self, msg: str) -> None:
        with self.lock:
            self.violations.append(msg)
        self.stop.set()

    def check_shared(self, k: int, tree, where: str) -> None:
        try:
            code = _code(tree)
        except AssertionError as e:
            self.violate(f"{where}: shared{k}: {e}")
            return
        if code not in self.written[k]:
            self.violate(f"{where}: shared{k} holds code {code}, which nobody wrote")

    # -- permanent hooks of shared[0] --
    def _count_after(self, ctx) -> None:
        self.check_shared(0, ctx.value, "write_after hook")
        with self.lock:
            self.after_calls += 1

    @staticmethod
    def _veto_negative(ctx) -> None:
        if int(np.asarray(ctx.value["b"][1])) < 0:
            ctx.cancel = True
            ctx.cancel_reason = _VETO_MSG

    # -- thread bodies --
    def _loop(self, tid: int, body) -> None:
        """Run ``body(i)`` until the deadline (at least once), with a private counter state."""
        own = brainstate.State(jnp.zeros(3, jnp.int32), name=f"own{tid}")
        deadline = time.monotonic() + self.duration
        i = 0
        while True:
            i += 1
            v = jnp.full((3,), i, jnp.int32)
            own.value = v
            got = own.value
            if got is not v or int(np.asarray(got)[0]) != i:
                self.violate(f"thread {tid}: private write {i} lost (read {got!r})")
            body(i)
            if self.stop.is_set() or time.monotonic() >= deadline:
                break
        if _impl.core.stack_level() != 0:
            self.violate(f"thread {tid}: {_impl.core.stack_level()} trace frames left open")
        self.bump("private_writes", i)

    def private_writer(self, tid: int) -> None:
        # a private tree state beside the loop's counter, written and read back
        st = brainstate.ShortTermState(_tree(0), name=f"private_tree{tid}")

        def body(i):
            v = _tree(i)
            st.value = v
            got = st.value
            if got is not v or _code(got) != i:
                self.violate(f"thread {tid}: private tree write {i} lost")

        self._loop(tid, body)

    def shared_writer(self, tid: int) -> None:
        rng = np.random.default_rng(tid)

        def body(i):
            k = int(rng.integers(N_SHARED))
            code = tid * 10_000_000 + i
            if k == 0 and i % 7 == 0:
                # illegal by policy: the veto hook refuses it and nothing changes
                with pytest.raises(HookCancellationError, match=_VETO_MSG):
                    self.shared[0].value = _tree(-code)
                self.bump("vetoed")
                return
            with self.lock:
                self.written[k].add(code)  # before the write: a reader may see it at once
            self.shared[k].value = _tree(code)
            if k == 0:
                with self.lock:
                    self.successes_0 += 1
            self.bump("shared_writes")

        self._loop(tid, body)

    def shared_reader(self, tid: int) -> None:
        def body(i):
            for k in range(N_SHARED):
                self.check_shared(k, self.shared[k].value, f"reader {tid}")
            self.bump("shared_reads", N_SHARED)

        self._loop(tid, body)

    def hook_churner(self, tid: int) -> None:
        rng = np.random.default_rng(100 + tid)

        def checked(k, where):
            def hook(ctx):
                # inside its own trace the shared tracer reads (and hooks see) its tracers
                if not threading.current_thread().name.startswith("shared_tracer"):
                    self.check_shared(k, ctx.value, where)
            return hook

        def on_write(k):
            return checked(k, "churned write_after hook")

        def on_read(k):
            return checked(k, "churned read hook")

        def global_count(ctx):
            self.bump("global_hook_calls")

        def body(i):
            k = int(rng.integers(N_SHARED))
            st = self.shared[k]
            hw = st.register_hook("write_after", on_write(k), priority=int(rng.integers(-5, 5)))
            hr = st.register_hook("read", on_read(k))
            self.check_shared(k, st.value, f"churner {tid}")  # fires the read hook
            hw.disable()
            hw.enable()
            glob = None
            if i % 5 == 0:
                glob = brainstate.register_state_hook("write_after", global_count)
            time.sleep(0)  # let writers run while the hooks are in place
            if not (hw.remove() and hr.remove()):
                self.violate(f"churner {tid}: a hook on shared{k} was already gone")
            if hw.remove():
                self.violate(f"churner {tid}: a hook was removed twice")
            if glob is not None and not glob.remove():
                self.violate(f"churner {tid}: the global hook was already gone")
            self.bump("hook_cycles")

        self._loop(tid, body)

    def jit_caller(self, tid: int) -> None:
        count = brainstate.State(jnp.zeros((), jnp.int32), name=f"count{tid}")
        acc = brainstate.HiddenState(jnp.zeros(8, jnp.float32), name=f"acc{tid}")

        def body_fn(x):
            count.value = count.value + 1
            acc.value = acc.value + x
            return count.value

        step = jit(body_fn)
        run = jit(lambda xs: for_loop(body_fn, xs))
        x = jnp.ones(8, jnp.float32)
        xs = jnp.ones((5, 8), jnp.float32)
        n = 0

        def body(i):
            nonlocal n
            if i % 4 == 0:
                outs = run(xs)
                n += 5
                got_out = int(np.asarray(outs)[-1])
            else:
                n += 1
                got_out = int(step(x))
            if got_out != n or int(count.value) != n:
                self.violate(f"jit thread {tid}: count {int(count.value)}, output {got_out}, "
                             f"expected {n}")
            np.testing.assert_array_equal(np.asarray(acc.value), np.full(8, n, np.float32))
            out = float(self.ro_fn(self.ro_arg))
            if out != self.ro_expected:
                self.violate(f"jit thread {tid}: read-only function gave {out}")
            ro = self.ro.value
            if isinstance(ro, jax.core.Tracer):
                self.violate(f"jit thread {tid}: the read-only state holds a tracer")
            self.bump("jit_calls")

        self._loop(tid, body)

    def tracer_thread(self, tid: int) -> None:
        src = brainstate.State(jnp.arange(4, dtype=jnp.float32), name=f"src{tid}")
        dst = brainstate.State(jnp.zeros(4, jnp.float32), name=f"dst{tid}")
        born: list = []

        def f(x):
            dst.value = src.value + x
            born.append(brainstate.State(jnp.zeros(()), name="born_in_trace"))
            return dst.value.sum()

        x = jnp.ones(4, jnp.float32)

        def body(i):
            src_before, dst_before = src.value, dst.value
            born.clear()
            if i % 2:
                sf = StatefulFunction(f).make_jaxpr(x)  # a fresh function: always traces
                reads, writes = sf.get_read_states(x), sf.get_write_states(x)
            else:
                _, states = make_jaxpr(f)(x)
                reads, writes = states[:1], states[1:]
            if list(reads) != [src] or list(writes) != [dst]:
                self.violate(f"trace thread {tid}: read {reads}, wrote {writes}")
            # the trace rolled its states back to the very objects they held
            if src.value is not src_before or dst.value is not dst_before:
                self.violate(f"trace thread {tid}: a traced state kept a trace value")
            with pytest.raises(TraceContextError, match=_POISON_MSG):
                born[0].value
            self.bump("traces")

        self._loop(tid, body)

    def shared_tracer(self, tid: int) -> None:
        k = N_SHARED - 1
        st = self.shared[k]
        x = jnp.arange(4, dtype=jnp.int32)

        def f(x):
            y = (st.value["a"] * x).sum()
            time.sleep(0.002)  # let the other threads run while the trace holds the state
            return y + st.value["b"][1]

        def body(i):
            _, states = make_jaxpr(f)(x)  # a fresh function: always traces
            if list(states) != [st]:
                self.violate(f"shared tracer {tid}: traced {states}")
            self.check_shared(k, st.value, f"shared tracer {tid}")  # the trace rolled back
            self.bump("shared_traces")

        self._loop(tid, body)

    def illegal_writer(self, tid: int) -> None:
        rng = np.random.default_rng(200 + tid)
        mine = brainstate.State(_tree(0), name=f"mine{tid}")

        def body(i):
            k = int(rng.integers(N_SHARED))
            target = self.shared[k] if i % 2 else mine

            def leak(c):
                target.value = _tree(c)  # a tracer of raw jax.jit: must be refused
                return c

            with pytest.raises(TraceContextError, match=_TRACER_MSG):
                jax.jit(leak)(jnp.asarray(i, jnp.int32))
            if target is mine:
                if _code(mine.value) != 0:
                    self.violate(f"illegal writer {tid}: refused write changed its own state")
            else:
                self.check_shared(k, target.value, f"illegal writer {tid}")
            self.bump("refused_tracer_writes")

        self._loop(tid, body)

    # -- running --
    ROLES = (
        ("private_writer", 2),
        ("shared_writer", 3),
        ("shared_reader", 2),
        ("hook_churner", 2),
        ("jit_caller", 2),
        ("tracer_thread", 2),
        ("shared_tracer", 1),
        ("illegal_writer", 2),
    )

    def _guarded(self, name: str, fn, tid: int) -> None:
        try:
            fn(tid)
        except BaseException:  # noqa: BLE001 - every failure is reported by the main thread
            with self.lock:
                self.errors.append(f"--- thread {name} ---\n{traceback.format_exc()}")
            self.stop.set()

    def run(self) -> None:
        threads = []
        tid = 0
        for role, n in self.ROLES:
            for _ in range(n):
                name = f"{role}-{tid}"
                threads.append(threading.Thread(target=self._guarded, name=name, daemon=True,
                                                args=(name, getattr(self, role), tid)))
                tid += 1
        for t in threads:
            t.start()
        limit = time.monotonic() + self.duration + self.watchdog
        for t in threads:
            t.join(max(0.0, limit - time.monotonic()))
        hung = [t.name for t in threads if t.is_alive()]
        if hung:
            self.stop.set()
            with tempfile.TemporaryFile("w+") as f:
                faulthandler.dump_traceback(file=f, all_threads=True)
                f.seek(0)
                stacks = f.read()
            pytest.fail(f"watchdog: threads {hung} did not finish within "
                        f"{self.duration + self.watchdog:.0f} s (deadlock?)\n{stacks}")


def _soak(duration: float, watchdog: float) -> None:
    assert not brainstate.has_state_hooks(), "a global hook was left by another test"
    gc.collect()
    soak = _Soak(duration, watchdog)
    assert sum(n for _, n in soak.ROLES) == 16
    active_before = _impl.core.hooks_active()
    soak.run()

    assert not soak.errors, "exceptions in threads:\n" + "\n".join(soak.errors)
    assert not soak.violations, "\n".join(soak.violations[:20])
    # every kind of work happened
    for key in ("private_writes", "shared_writes", "shared_reads", "vetoed", "hook_cycles",
                "jit_calls", "traces", "shared_traces", "refused_tracer_writes"):
        assert soak.counts.get(key, 0) > 0, f"no {key} in {soak.counts}"
    # final shared values are whole values somebody wrote
    for k, st in enumerate(soak.shared):
        assert _code(st.value) in soak.written[k]
    # the permanent write_after hook saw every successful write, and nothing else
    assert soak.after_calls == soak.successes_0
    # every churned hook is gone, the permanent ones are still there, counters balance
    assert [len(st.list_hooks()) for st in soak.shared] == soak.base_hooks
    assert not brainstate.has_state_hooks()
    assert _impl.core.hooks_active() == active_before
    assert _impl.core.stack_level() == 0
    assert gc.isenabled(), "a trace left the garbage collector paused"


def test_soak_short():
    """16 threads for a few seconds: the default-run version."""
    _soak(duration=2.5, watchdog=90.0)


@pytest.mark.slow
@pytest.mark.stress
def test_soak_long():
    """16 threads for 30 seconds."""
    _soak(duration=30.0, watchdog=120.0)


# --- the watchdog itself --------------------------------------------------------------------


def test_watchdog_reports_a_hung_thread():
    """A thread that never finishes fails the run with a stack dump naming it."""
    release = threading.Event()

    class Hanging(_Soak):
        ROLES = (("hang", 1), ("private_writer", 1))

        def hang(self, tid: int) -> None:
            release.wait(30)

    soak = Hanging(duration=0.2, watchdog=1.0)
    try:
        # the message names the thread and its stack dump shows where it hangs
        with pytest.raises(pytest.fail.Exception,
                           match=r"(?s)watchdog: threads \['hang-0'\].* in hang\n"):
            soak.run()
    finally:
        release.set()


def test_thread_exceptions_are_collected():
    """An exception in one thread reaches the main thread with its traceback."""

    class Failing(_Soak):
        ROLES = (("boom", 1), ("private_writer", 1))

        def boom(self, tid: int) -> None:
            raise RuntimeError("boom from a worker")

    soak = Failing(duration=30.0, watchdog=60.0)
    t0 = time.monotonic()
    soak.run()
    assert time.monotonic() - t0 < 25.0, "a failure did not stop the other threads"
    assert any("RuntimeError: boom from a worker" in e for e in soak.errors)
    assert soak.stop.is_set()


# --- focused cross-thread rules -------------------------------------------------------------


def _in_thread(fn):
    """Run ``fn`` in a fresh thread; re-raise what it raised."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "thread did not finish"
    if "error" in box:
        raise box["error"]
    return box.get("result")


def test_worker_raw_jit_write_to_main_thread_state_raises():
    """A tracer written from a worker's raw ``jax.jit`` into a main-thread state is refused."""
    st = brainstate.State(jnp.zeros(3, jnp.float32), name="main_owned")
    before = st.value

    def worker():
        jax.jit(lambda x: setattr(st, "value", x))(jnp.ones(3, jnp.float32))

    with pytest.raises(TraceContextError, match=_TRACER_MSG + " State 'main_owned'"):
        _in_thread(worker)
    assert st.value is before


def test_worker_can_write_concrete_values_to_main_thread_state():
    """Concrete writes from another thread are legal and land."""
    st = brainstate.State(jnp.zeros(3, jnp.float32))
    new = jnp.ones(3, jnp.float32)
    _in_thread(lambda: setattr(st, "value", new))
    assert st.value is new


def test_state_born_in_a_worker_trace_is_poisoned_everywhere():
    """A state created inside a trace in one thread cannot be read from another afterwards."""
    born: list = []

    def f():
        born.append(brainstate.State(jnp.zeros(2, jnp.float32), name="born"))
        return jnp.zeros(())

    _in_thread(lambda: StatefulFunction(f).make_jaxpr())
    with pytest.raises(TraceContextError, match=_POISON_MSG):
        born[0].value
    # a concrete value makes it usable again, as the message says
    born[0].value = jnp.ones(2, jnp.float32)
    np.testing.assert_array_equal(np.asarray(born[0].value), np.ones(2, np.float32))


def test_concurrent_first_traces_of_one_function_agree():
    """Eight threads making the first trace of one state-free StatefulFunction at once."""
    sf = StatefulFunction(lambda x: x * 2.0)
    bar = threading.Barrier(8)
    results: list = []
    lock = threading.Lock()

    def worker():
        bar.wait(10)
        sf.make_jaxpr(jnp.ones(4, jnp.float32))
        with lock:
            results.append((sf.get_states(jnp.ones(4, jnp.float32)),
                            str(sf.get_jaxpr(jnp.ones(4, jnp.float32)))))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 8
    assert {r for r in results} == {results[0]} and results[0][0] == ()


def test_concurrent_first_register_hook_keeps_every_hook(monkeypatch):
    # regression: the lazily created HookManager was not guarded, so two threads registering
    # a state's first hooks could each create one and the hooks on the replaced one were lost
    from brainstate import _hooks

    st = brainstate.State(jnp.zeros(()))
    meet = threading.Barrier(2)

    class SlowManager(_hooks.HookManager):
        # Hold each new manager until a second thread has started creating one too: with a
        # race-free lazy creation the second thread never gets here, and the wait times out.
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            try:
                meet.wait(1.0)
            except threading.BrokenBarrierError:
                pass

    monkeypatch.setattr(_hooks, "HookManager", SlowManager)
    start = threading.Barrier(2)

    def register():
        start.wait(10)
        st.register_hook("write_after", lambda ctx: None)

    threads = [threading.Thread(target=register, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(st.list_hooks("write_after")) == 2
