"""Crash safety of ``checkpoint.save``: a save killed with SIGKILL at a random moment.

A child process saves a ~10 MB model over and over to one path, alternating two known contents
and numbering each save in the file's metadata; the parent kills it after a random delay. The
path must then hold a complete checkpoint (verified load) of the last save the child reported
done or of the one it was writing, or nothing when no save to it ever completed; the only other
entry allowed in the folder is the killed save's temporary file. A later save must succeed, and
once the leftover is older than the age guard, that later save removes it.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.checkpoint import load, save
from brainstate.checkpoint import _format as fmt

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL") or os.name != "posix",
    reason="needs SIGKILL and flock (POSIX)",
)

NAME = "model.ckpt"
TEMP = re.compile(r"\.model\.ckpt\.[0-9a-f]{8}\.tmp")
# Shapes and dtypes of the model's states; the values come from _content(seed).
SHAPES = {"w1": ((1024, 1024), "float32"), "w2": ((1024, 1024), "float32"),
          "b": ((1024,), "float32"), "v": ((512, 1024), "float32"), "n": ((1000,), "int32")}

_MODEL_SRC = """
import numpy as np, jax.numpy as jnp, brainstate

SHAPES = {shapes}

def content(seed):
    rng = np.random.default_rng(seed)
    out = {{}}
    for k, (shape, dt) in SHAPES.items():
        if np.dtype(dt).kind == "f":
            out[k] = rng.standard_normal(shape).astype(dt)
        else:
            out[k] = rng.integers(-1000, 1000, shape).astype(dt)
    return out

class Net(brainstate.nn.Module):
    def __init__(self):
        super().__init__()
        z = {{k: jnp.zeros(shape, dt) for k, (shape, dt) in SHAPES.items()}}
        self.w1 = brainstate.ParamState(z["w1"])
        self.w2 = brainstate.ParamState(z["w2"])
        self.b = brainstate.ParamState(z["b"])
        self.h = brainstate.ShortTermState({{"v": z["v"], "n": z["n"]}})

    def set(self, c):
        self.w1.value = c["w1"]
        self.w2.value = c["w2"]
        self.b.value = c["b"]
        self.h.value = {{"v": c["v"], "n": c["n"]}}

    def get(self):
        h = self.h.value
        return {{"w1": self.w1.value, "w2": self.w2.value, "b": self.b.value,
                 "v": h["v"], "n": h["n"]}}
"""

# The child: save content (i % 2) with metadata {"run": run, "i": i} for i = 0, 1, 2, ...,
# reporting each completed save on stdout, until it is killed.
_CHILD = _MODEL_SRC + """
import sys
from brainstate.checkpoint import save

path, run = sys.argv[1], int(sys.argv[2])
net = Net()
contents = [{{k: jnp.asarray(v) for k, v in content(s).items()}} for s in (0, 1)]
sys.stdout.write("ready\\n")
sys.stdout.flush()
i = 0
while True:
    net.set(contents[i % 2])
    save(path, net, metadata={{"run": run, "i": i}})
    sys.stdout.write(f"saved {{i}}\\n")
    sys.stdout.flush()
    i += 1
"""

_ns: dict = {}
exec(_MODEL_SRC.format(shapes=repr(SHAPES)), _ns)  # the parent's copy of the same model
Net, _content = _ns["Net"], _ns["content"]
CONTENTS = {s: _content(s) for s in (0, 1, 2)}
# Parent-side brainstate calls run one at a time; only the children run side by side.
_PARENT_LOCK = threading.Lock()


def _child_script() -> str:
    return textwrap.dedent(_CHILD.format(shapes=repr(SHAPES)))


def _read_checkpoint(path) -> tuple[dict, dict]:
    net = Net()
    result = load(path, net, verify=True)
    return result.metadata, {k: np.asarray(v) for k, v in net.get().items()}


def _same(got: dict, want: dict) -> bool:
    return all(got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]) for k in want)


def _temps(folder) -> list:
    names = sorted(os.listdir(folder))
    assert set(names) <= {NAME} | {n for n in names if TEMP.fullmatch(n)}, names
    return [n for n in names if n != NAME]


def _age(folder, names, seconds: float) -> None:
    past = time.time() - seconds
    for n in names:
        os.utime(os.path.join(folder, n), (past, past))


def _kill_one(folder, run: int, delay: float, before) -> dict:
    """Start a saving child, SIGKILL it ``delay`` s after it is ready, check what it left.

    ``before``: the (metadata, seed) the path held before this child, or None if nothing.
    Returns what happened, for the caller's statistics.
    """
    path = os.path.join(folder, NAME)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-c", _child_script(), path, str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        first = proc.stdout.readline()
        if first != b"ready\n":
            proc.kill()
            raise AssertionError(f"child did not start: {first!r} {proc.stderr.read()!r}")
        time.sleep(delay)
        proc.kill()  # SIGKILL
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, err.decode()
    # Only whole lines: a line cut by the kill was not reported.
    done = [int(m) for m in re.findall(rb"^saved (\d+)\n", out, re.M)]
    assert done == list(range(len(done)))
    last = done[-1] if done else -1

    with _PARENT_LOCK:
        leftovers = _temps(folder)
        # At most the temporary of the save that was running when the kill came.
        assert len(leftovers) <= 1, leftovers
        if os.path.exists(path):
            meta, got = _read_checkpoint(path)
            if meta.get("run") == run:
                i = meta["i"]
                # the last reported save, or the next one if it was renamed before reporting
                assert i in (last, last + 1) and i >= 0, (i, done)
                assert _same(got, CONTENTS[i % 2]), f"save {i} holds wrong data"
            else:
                # nothing of this child reached the path: it still holds what it held
                assert last == -1, (meta, done)
                assert before is not None and meta == before[0], (meta, before)
                assert _same(got, CONTENTS[before[1]])
        else:
            assert last == -1 and before is None, done

        # A later save succeeds beside the leftover, and keeps it while it is young.
        fresh = {"run": run, "i": "parent"}
        net = Net()
        net.set({k: jnp.asarray(v) for k, v in CONTENTS[2].items()})
        save(path, net, metadata=fresh)
        meta, got = _read_checkpoint(path)
        assert meta == fresh and _same(got, CONTENTS[2])
        assert _temps(folder) == leftovers
        # Once older than the age guard, the next save removes it (the child is dead, so no
        # lock holds it).
        _age(folder, leftovers, 2 * fmt._STALE_TEMP_AGE_S)
        save(path, net, metadata=fresh)
        assert _temps(folder) == []
    return {"reported": len(done), "left_temp": bool(leftovers), "state": (fresh, 2)}


def _kill_many(tmp_path, kills: int, lanes: int, seed: int, max_delay: float) -> list:
    """``kills`` kills spread over ``lanes`` folders; each lane's kills run one after another
    (each child finds the previous one's checkpoint), the lanes side by side."""
    rng = random.Random(seed)
    plan = [[] for _ in range(lanes)]
    for k in range(kills):
        # a few kills right after start-up (likely before any save completed), most later
        plan[k % lanes].append((k, rng.choice([0.0, rng.uniform(0.0, max_delay)])
                                if k < lanes else rng.uniform(0.0, max_delay)))

    def lane(j: int) -> list:
        folder = tmp_path / f"lane{j}"
        folder.mkdir()
        before, stats = None, []
        for run, delay in plan[j]:
            stats.append(_kill_one(folder, run, delay, before))
            before = stats[-1]["state"]
        return stats

    with concurrent.futures.ThreadPoolExecutor(max_workers=lanes) as pool:
        return [s for f in [pool.submit(lane, j) for j in range(lanes)] for s in f.result()]


def test_sigkill_during_saves_leaves_a_complete_checkpoint(tmp_path):
    stats = _kill_many(tmp_path, kills=5, lanes=5, seed=0, max_delay=0.6)
    assert len(stats) == 5


@pytest.mark.slow
@pytest.mark.stress
def test_sigkill_during_saves_leaves_a_complete_checkpoint_many(tmp_path):
    stats = _kill_many(tmp_path, kills=40, lanes=4, seed=1, max_delay=1.0)
    assert len(stats) == 40
    # The kills did land inside saves (a temporary left behind) and between completed ones.
    assert any(s["left_temp"] for s in stats), stats
    assert any(s["reported"] > 0 for s in stats), stats


# --- the clean-up rule, without a child process --------------------------------------------------


def _ckpt(path, seed: int = 2, meta=None) -> None:
    net = Net()
    net.set({k: jnp.asarray(v) for k, v in CONTENTS[seed].items()})
    save(path, net, metadata=meta)


def _small(path) -> None:
    save(path, brainstate.ParamState(jnp.arange(3.0)))


def test_stale_temps_of_the_same_path_are_removed_others_untouched(tmp_path):
    p = tmp_path / NAME
    _small(p)
    stale = [".model.ckpt.0123abcd.tmp", ".model.ckpt.deadbeef.tmp"]
    young = ".model.ckpt.00000001.tmp"
    # not temporaries of this path's saves: another path's, other names, a folder, a link
    others = [".other.ckpt.0123abcd.tmp", "model.ckpt.0123abcd.tmp", ".model.ckpt.0123abcd.tmp.x",
              ".model.ckpt.0123ABCD.tmp", ".model.ckpt.123.tmp", "notes.tmp"]
    for n in stale + [young] + others:
        (tmp_path / n).write_bytes(b"partial")
    (tmp_path / ".model.ckpt.aaaaaaaa.tmp").mkdir()
    (tmp_path / ".model.ckpt.bbbbbbbb.tmp").symlink_to(tmp_path / "notes.tmp")
    kept = others + [young, ".model.ckpt.aaaaaaaa.tmp", ".model.ckpt.bbbbbbbb.tmp"]
    _age(tmp_path, stale + others + [".model.ckpt.aaaaaaaa.tmp"], 2 * fmt._STALE_TEMP_AGE_S)
    os.utime(tmp_path / ".model.ckpt.bbbbbbbb.tmp", (0, 0), follow_symlinks=False)
    _small(p)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + [NAME])
    assert (tmp_path / "notes.tmp").read_bytes() == b"partial"  # the link was not followed
    # the young one goes once it is old enough
    _age(tmp_path, [young], 2 * fmt._STALE_TEMP_AGE_S)
    _small(p)
    assert young not in os.listdir(tmp_path)


def test_a_locked_temp_of_a_live_save_is_kept_however_old(tmp_path):
    import fcntl

    p = tmp_path / NAME
    live = tmp_path / ".model.ckpt.0badc0de.tmp"
    fd = os.open(live, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a save in progress holds
        _age(tmp_path, [live.name], 10 * fmt._STALE_TEMP_AGE_S)
        _small(p)
        assert sorted(os.listdir(tmp_path)) == sorted([NAME, live.name])
    finally:
        os.close(fd)  # the "writer" dies: its lock goes with it
    _small(p)
    assert os.listdir(tmp_path) == [NAME]


def test_a_slow_concurrent_save_keeps_its_temp_and_completes(tmp_path):
    """A save in another process, stalled mid-write with an old-looking temporary, is not
    disturbed by saves to the same path; its own rename then wins, complete."""
    p = tmp_path / NAME
    _ckpt(p, seed=0, meta={"who": "old"})
    child = _MODEL_SRC.format(shapes=repr(SHAPES)) + textwrap.dedent(f"""
        import sys
        from brainstate.checkpoint import save, _format as fmt
        real, n = fmt._write_blob, []
        def stalling(f, blob):
            n.append(1)
            if len(n) == 2:  # mid-data: tell the parent, wait for it
                f.flush()
                sys.stdout.write("stalled\\n"); sys.stdout.flush()
                sys.stdin.readline()
            real(f, blob)
        fmt._write_blob = stalling
        net = Net()
        net.set({{k: jnp.asarray(v) for k, v in content(1).items()}})
        save({str(p)!r}, net, metadata={{"who": "child"}})
        sys.stdout.write("saved\\n"); sys.stdout.flush()
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline() == b"stalled\n", proc.stderr.read().decode()
        (tmp,) = _temps(tmp_path)
        size = os.path.getsize(tmp_path / tmp)
        _age(tmp_path, [tmp], 10 * fmt._STALE_TEMP_AGE_S)
        _ckpt(p, seed=2, meta={"who": "parent"})  # meanwhile, a save of the parent's
        assert _temps(tmp_path) == [tmp] and os.path.getsize(tmp_path / tmp) == size
        assert _read_checkpoint(p)[0] == {"who": "parent"}
        out, err = proc.communicate(b"go\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and out.endswith(b"saved\n"), err.decode()
    meta, got = _read_checkpoint(p)
    assert meta == {"who": "child"} and _same(got, CONTENTS[1])
    assert os.listdir(tmp_path) == [NAME]


def test_save_works_where_the_file_system_refuses_locks(tmp_path, monkeypatch):
    """No flock (some network file systems): saves still work; leftovers are kept, since
    nothing tells a dead writer's temporary from a live one's."""
    def refuse(fd, op):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fmt.fcntl, "flock", refuse)
    p = tmp_path / NAME
    left = tmp_path / ".model.ckpt.0123abcd.tmp"
    left.write_bytes(b"partial")
    _age(tmp_path, [left.name], 2 * fmt._STALE_TEMP_AGE_S)
    _small(p)
    _small(p)
    assert sorted(os.listdir(tmp_path)) == sorted([NAME, left.name])
    np.testing.assert_array_equal(
        np.asarray(fmt.read_checkpoint(p)[1][0].value), np.arange(3.0, dtype=np.float32))
