"""Crash safety of ``checkpoint.save``: a save killed with SIGKILL at a random moment.

A child process saves a ~10 MB model over and over to one path, alternating two known contents
and numbering each save in the file's metadata; the parent kills it after a random delay. The
path must then hold a complete checkpoint (verified load) of the last save the child reported
done or of the one it was writing, or nothing when no save to it ever completed; the only other
entry allowed in the folder is the killed save's temporary file. A later save must succeed, and
once the leftover is older than the age guard, that later save removes it.

The Orbax backend (skipped without ``orbax-checkpoint``) gets the same kill loop, where the
leftovers are one save's lock file, temporary directory, Orbax staging directory and ``.old``
(what the path held, moved aside); a save killed between the two renames of its swap leaves
the path missing and the previous checkpoint whole under ``.old``, which the clean-up of a
later save puts back. Children stopped exactly there check that case, and that a live save is
never disturbed; built-up leftovers check which names the clean-up removes and which it keeps.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import re
import shutil
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
from brainstate.checkpoint import _orbax

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
if {backend!r} == "orbax":  # imported before "ready": the kills land in saves, not imports
    import orbax.checkpoint, brainstate.checkpoint._orbax

path, run = sys.argv[1], int(sys.argv[2])
net = Net()
contents = [{{k: jnp.asarray(v) for k, v in content(s).items()}} for s in (0, 1)]
sys.stdout.write("ready\\n")
sys.stdout.flush()
i = 0
while True:
    net.set(contents[i % 2])
    save(path, net, metadata={{"run": run, "i": i}}, backend={backend!r})
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


def _child_script(backend: str = "native") -> str:
    return textwrap.dedent(_CHILD.format(shapes=repr(SHAPES), backend=backend))


def _read_checkpoint(path) -> tuple[dict, dict]:
    net = Net()
    result = load(path, net, verify=True)
    return result.metadata, {k: np.asarray(v) for k, v in net.get().items()}


def _check_complete(path, run, last, before, done) -> None:
    """``path`` holds a whole checkpoint: the last save this child reported, or the next one if
    it was renamed before reporting; or, if nothing of this child reached the path, what it
    held before."""
    meta, got = _read_checkpoint(path)
    if meta.get("run") == run:
        i = meta["i"]
        assert i in (last, last + 1) and i >= 0, (i, done)
        assert _same(got, CONTENTS[i % 2]), f"save {i} holds wrong data"
    else:
        assert last == -1, (meta, done)
        assert before is not None and meta == before[0], (meta, before)
        assert _same(got, CONTENTS[before[1]])


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


def _run_and_kill(path: str, run: int, delay: float, backend: str) -> list:
    """Start a child saving to ``path`` over and over, SIGKILL it ``delay`` s after it is
    ready; the numbers of the saves it reported complete."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-c", _child_script(backend), path, str(run)],
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
    return done


def _kill_one(folder, run: int, delay: float, before) -> dict:
    """Start a saving child, SIGKILL it ``delay`` s after it is ready, check what it left.

    ``before``: the (metadata, seed) the path held before this child, or None if nothing.
    Returns what happened, for the caller's statistics.
    """
    path = os.path.join(folder, NAME)
    done = _run_and_kill(path, run, delay, "native")
    last = done[-1] if done else -1

    with _PARENT_LOCK:
        leftovers = _temps(folder)
        # At most the temporary of the save that was running when the kill came.
        assert len(leftovers) <= 1, leftovers
        if os.path.exists(path):
            _check_complete(path, run, last, before, done)
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


def _kill_many(tmp_path, kills: int, lanes: int, seed: int, max_delay: float,
               kill_one=_kill_one) -> list:
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
            stats.append(kill_one(folder, run, delay, before))
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


# --- the Orbax backend: a directory, swapped in by two renames -----------------------------------

# The names of one Orbax save: its lock file, its temporary, Orbax's staging directory beside
# it, and what was at the path, moved aside.
OTEMP = re.compile(r"(\.model\.ckpt\.[0-9a-f]{8}\.tmp)"
                   r"(\.lock|\.old|\.orbax-checkpoint-tmp(-[0-9]+)?)?")

# A child that saves content ``seed`` with the Orbax backend and stops between the two renames
# of the swap (the path moved aside, the new checkpoint not in place) until told to go on.
_STALL_CHILD = _MODEL_SRC + """
import os, sys
import orbax.checkpoint
from brainstate.checkpoint import save

path, seed = sys.argv[1], int(sys.argv[2])
real = os.rename

def rename(src, dst, *args, **kwargs):
    real(src, dst, *args, **kwargs)
    if os.fspath(src) == path:
        sys.stdout.write("between\\n")
        sys.stdout.flush()
        sys.stdin.readline()

os.rename = rename
net = Net()
net.set({{k: jnp.asarray(v) for k, v in content(seed).items()}})
save(path, net, metadata={{"who": "child"}}, backend="orbax")
sys.stdout.write("saved\\n")
sys.stdout.flush()
"""


@pytest.fixture
def ocp():
    return pytest.importorskip("orbax.checkpoint", reason="needs the brainstate[orbax] extra")


def _orbax_leftovers(folder) -> list:
    """The names beside the checkpoint; all must be one Orbax save's."""
    names = sorted(os.listdir(folder))
    others = [n for n in names if n != NAME]
    assert all(OTEMP.fullmatch(n) for n in others), names
    assert len({OTEMP.fullmatch(n).group(1) for n in others}) <= 1, names
    return others


def _age_tree(folder, names, seconds: float) -> None:
    """Age these entries and all inside them (a save's age is that of its newest change)."""
    past = time.time() - seconds
    for n in names:
        top = os.path.join(folder, n)
        paths = [top]
        if os.path.isdir(top) and not os.path.islink(top):
            for root, dirs, files in os.walk(top):
                paths += [os.path.join(root, x) for x in dirs + files]
        for q in paths:
            os.utime(q, (past, past), follow_symlinks=False)


def _orbax_save(path, seed: int = 2, meta=None) -> None:
    net = Net()
    net.set({k: jnp.asarray(v) for k, v in CONTENTS[seed].items()})
    save(path, net, metadata=meta, backend="orbax")


def _group(folder, digits: str, parts, lock: bool = True) -> list:
    """What a save with these digits left: its lock file and a directory per part."""
    stem = f".{NAME}.{digits}.tmp"
    if lock:
        (folder / (stem + ".lock")).write_bytes(b"")
    for part in parts:
        (folder / (stem + part)).mkdir()
        (folder / (stem + part) / "d").write_bytes(b"partial")
    return ([stem + ".lock"] if lock else []) + [stem + p for p in parts]


def _orbax_kill_one(folder, run: int, delay: float, before) -> dict:
    """``_kill_one`` for the Orbax backend: what a killed Orbax save leaves, and its clean-up."""
    path = os.path.join(folder, NAME)
    done = _run_and_kill(path, run, delay, "orbax")
    last = done[-1] if done else -1

    with _PARENT_LOCK:
        left = _orbax_leftovers(folder)
        old = [n for n in left if n.endswith(".old")]
        between = not os.path.lexists(path) and bool(old)
        if os.path.exists(path):
            _check_complete(path, run, last, before, done)
        elif between:
            # killed between the two renames: the checkpoint the path held is whole under .old
            # (the last reported save, or what the path held before this child), load reports
            # the path missing, and the clean-up of a later save puts the checkpoint back
            meta, got = _read_checkpoint(os.path.join(folder, old[0]))
            if meta.get("run") == run:
                assert meta["i"] == last and _same(got, CONTENTS[last % 2]), (meta, done)
            else:
                assert last == -1 and before is not None and meta == before[0], (meta, before)
                assert _same(got, CONTENTS[before[1]])
            with pytest.raises(FileNotFoundError):
                _read_checkpoint(path)
            _age_tree(folder, left, 2 * fmt._STALE_TEMP_AGE_S)
            _orbax._remove_stale_saves(str(folder), NAME, path)
            assert _orbax_leftovers(folder) == [] and _read_checkpoint(path)[0] == meta
            left = []
        else:
            assert last == -1 and before is None, done

        # A later save succeeds beside the leftovers and keeps them while they are young; once
        # they are older than the age guard, the next save removes them.
        fresh = {"run": run, "i": "parent"}
        _orbax_save(path, 2, fresh)
        meta, got = _read_checkpoint(path)
        assert meta == fresh and _same(got, CONTENTS[2])
        assert _orbax_leftovers(folder) == left
        _age_tree(folder, left, 2 * fmt._STALE_TEMP_AGE_S)
        _orbax_save(path, 2, fresh)
        assert _orbax_leftovers(folder) == []
    return {"reported": len(done), "left_temp": bool(left), "between": between,
            "state": (fresh, 2)}


def test_orbax_sigkill_during_saves_leaves_a_complete_checkpoint(ocp, tmp_path):
    stats = _kill_many(tmp_path, kills=2, lanes=2, seed=2, max_delay=0.8,
                       kill_one=_orbax_kill_one)
    assert len(stats) == 2


@pytest.mark.slow
@pytest.mark.stress
def test_orbax_sigkill_during_saves_leaves_a_complete_checkpoint_many(ocp, tmp_path):
    stats = _kill_many(tmp_path, kills=30, lanes=3, seed=3, max_delay=1.5,
                       kill_one=_orbax_kill_one)
    assert len(stats) == 30
    assert any(s["left_temp"] for s in stats), stats
    assert any(s["reported"] > 0 for s in stats), stats


@pytest.fixture(scope="module")
def stalled(tmp_path_factory):
    """Two children, each stopped between the renames of an Orbax save of content 1 over a
    checkpoint of content 0 (metadata ``{"who": "old"}``): ``{"live": (folder, process),
    "killed": ...}``. Started side by side: their start-up is most of the cost."""
    pytest.importorskip("orbax.checkpoint", reason="needs the brainstate[orbax] extra")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), JAX_PLATFORMS="cpu")
    script = textwrap.dedent(_STALL_CHILD.format(shapes=repr(SHAPES)))
    children = {}
    try:
        for role in ("live", "killed"):
            folder = tmp_path_factory.mktemp(role)
            _orbax_save(folder / NAME, 0, {"who": "old"})
            children[role] = (folder, subprocess.Popen(
                [sys.executable, "-c", script, str(folder / NAME), "1"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))
        for _, proc in children.values():
            first = proc.stdout.readline()
            if first != b"between\n":
                proc.kill()
                raise AssertionError(f"child did not stop: {first!r} {proc.stderr.read()!r}")
        yield children
    finally:
        for _, proc in children.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_orbax_a_save_stopped_between_its_renames_is_left_alone_and_completes(ocp, stalled):
    folder, proc = stalled["live"]
    p = folder / NAME
    left = _orbax_leftovers(folder)
    assert not p.exists() and len(left) == 3, left  # lock file, temporary, .old
    (old,) = [n for n in left if n.endswith(".old")]
    _age_tree(folder, left, 10 * fmt._STALE_TEMP_AGE_S)
    # Meanwhile a save of the parent's: it neither touches the live save's names nor puts its
    # .old back, and takes the free path.
    _orbax_save(p, 2, {"who": "parent"})
    assert _orbax_leftovers(folder) == left
    assert _read_checkpoint(folder / old)[0] == {"who": "old"}
    assert _read_checkpoint(p)[0] == {"who": "parent"}
    out, err = proc.communicate(b"go\n", timeout=60)
    # The child finds the path taken, moves that aside in turn and completes.
    assert proc.returncode == 0 and out.endswith(b"saved\n"), err.decode()
    meta, got = _read_checkpoint(p)
    assert meta == {"who": "child"} and _same(got, CONTENTS[1])
    assert os.listdir(folder) == [NAME]


def test_orbax_a_save_killed_between_its_renames_loses_no_checkpoint(ocp, stalled, monkeypatch):
    folder, proc = stalled["killed"]
    p = folder / NAME
    proc.kill()
    proc.communicate()
    left = _orbax_leftovers(folder)
    (old,) = [n for n in left if n.endswith(".old")]
    assert not p.exists()
    # load reports the missing path and deletes nothing
    with pytest.raises(FileNotFoundError):
        load(p, Net())
    assert _orbax_leftovers(folder) == left
    meta, got = _read_checkpoint(folder / old)
    assert meta == {"who": "old"} and _same(got, CONTENTS[0])

    def failing(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    # A save (failing after its clean-up) while the killed save is young: nothing changes.
    monkeypatch.setattr(ocp.Checkpointer, "save", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _orbax_save(p, 2, {"who": "failed"})
    assert not p.exists() and _orbax_leftovers(folder) == left
    # Once it is stale, the next save puts the checkpoint back first, even if it then fails.
    _age_tree(folder, left, 2 * fmt._STALE_TEMP_AGE_S)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _orbax_save(p, 2, {"who": "failed"})
    assert os.listdir(folder) == [NAME]
    meta, got = _read_checkpoint(p)
    assert meta == {"who": "old"} and _same(got, CONTENTS[0])
    monkeypatch.undo()
    _orbax_save(p, 2, {"who": "new"})
    assert _read_checkpoint(p)[0] == {"who": "new"} and os.listdir(folder) == [NAME]


def test_orbax_stale_leftovers_are_removed_others_untouched(ocp, tmp_path):
    import fcntl

    p = tmp_path / NAME
    _orbax_save(p, 0)
    # a dead save with every kind of entry; its .old is superseded (the path exists)
    dead = _group(tmp_path, "0123abcd", ["", ".orbax-checkpoint-tmp",
                                         ".orbax-checkpoint-tmp-1700000000"])
    shutil.copytree(p, tmp_path / ".model.ckpt.0123abcd.tmp.old")
    dead.append(".model.ckpt.0123abcd.tmp.old")
    native = ".model.ckpt.feedf00d.tmp"  # a killed native save's temporary file of this path
    (tmp_path / native).write_bytes(b"partial")
    young = _group(tmp_path, "00000001", [""])
    live = _group(tmp_path, "0badc0de", ["", ".old"])
    lockless = _group(tmp_path, "0000beef", ["", ".old"], lock=False)
    # a lock file that is a link, and a dead save whose temporary is a link: never followed
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep").write_bytes(b"data")
    (tmp_path / "notes.tmp").write_bytes(b"notes")
    linked = _group(tmp_path, "1111aaaa", [""], lock=False) + [".model.ckpt.1111aaaa.tmp.lock"]
    (tmp_path / ".model.ckpt.1111aaaa.tmp.lock").symlink_to(tmp_path / "notes.tmp")
    link_entry = _group(tmp_path, "2222bbbb", [])
    (tmp_path / ".model.ckpt.2222bbbb.tmp").symlink_to(tmp_path / "outside")
    link_entry.append(".model.ckpt.2222bbbb.tmp")
    # names that are not a save's of this path
    others = [".other.ckpt.0123abcd.tmp", ".model.ckpt.0123ABCD.tmp.lock",
              ".model.ckpt.0123abcd.tmp.lockx", ".model.ckpt.0123abcd.tmp.orbax-checkpoint-tmp-x",
              ".model.ckpt.0123abcd.tmp.old.1", "model.ckpt.0123abcd.tmp.lock"]
    for n in others:
        (tmp_path / n).mkdir()
    kept = young + live + lockless + linked + link_entry + others + ["outside", "notes.tmp"]
    fd = os.open(tmp_path / live[0], os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a save in progress holds
        _age_tree(tmp_path, [n for n in os.listdir(tmp_path) if n not in young],
                  10 * fmt._STALE_TEMP_AGE_S)
        _orbax_save(p, 1)
        assert sorted(os.listdir(tmp_path)) == sorted(kept + [NAME])
        assert (tmp_path / "outside" / "keep").read_bytes() == b"data"
        assert (tmp_path / "notes.tmp").read_bytes() == b"notes"
        assert _read_checkpoint(p)[0] == {}
        # the young one goes once it is old enough
        _age_tree(tmp_path, young, 2 * fmt._STALE_TEMP_AGE_S)
        _orbax_save(p, 1)
        assert not set(young) & set(os.listdir(tmp_path))
    finally:
        os.close(fd)  # the "writer" dies: its lock goes with it
    _orbax_save(p, 1)
    assert sorted(os.listdir(tmp_path)) == sorted(lockless + linked + link_entry + others
                                                  + ["outside", "notes.tmp", NAME])
    _, got = _read_checkpoint(p)
    assert _same(got, CONTENTS[1])


def test_orbax_the_newest_whole_checkpoint_moved_aside_is_put_back(ocp, tmp_path):
    import fcntl

    p = tmp_path / NAME
    # Saves killed between their renames, each leaving what the path held under .old (the
    # path held seed 0, then seed 1); the newest .old was being deleted (no document left).
    groups = []
    for digits, seed in (("000000a1", 0), ("000000a2", 1)):
        _orbax_save(tmp_path / "src", seed, {"seed": seed})
        groups += _group(tmp_path, digits, [])
        os.rename(tmp_path / "src", tmp_path / f".{NAME}.{digits}.tmp.old")
        groups.append(f".{NAME}.{digits}.tmp.old")
    groups += _group(tmp_path, "000000a3", ["", ".old"])
    live = _group(tmp_path, "0badc0de", [".old"])  # a running save that moved a path aside
    _age_tree(tmp_path, groups + live, 10 * fmt._STALE_TEMP_AGE_S)
    now = time.time()
    for digits, ago in (("000000a1", 300), ("000000a2", 200)):
        doc = tmp_path / f".{NAME}.{digits}.tmp.old" / _orbax.META_NAME
        os.utime(doc, (now - ago, now - ago))
    fd = os.open(tmp_path / live[0], os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Which checkpoint is newest cannot be told while that save runs: nothing is put back,
        # and a dead .old is never deleted while the path is missing.
        _orbax._remove_stale_saves(str(tmp_path), NAME, str(p))
        assert not p.exists()
        assert {f".{NAME}.{d}.tmp.old" for d in ("000000a1", "000000a2", "000000a3")} \
            <= set(os.listdir(tmp_path))
    finally:
        os.close(fd)
    _orbax._remove_stale_saves(str(tmp_path), NAME, str(p))
    assert os.listdir(tmp_path) == [NAME]
    meta, got = _read_checkpoint(p)
    assert meta == {"seed": 1} and _same(got, CONTENTS[1])


def test_orbax_a_failed_swap_puts_the_old_checkpoint_back(ocp, tmp_path, monkeypatch):
    p = tmp_path / NAME
    _orbax_save(p, 0, {"who": "old"})
    real = os.rename

    def rename(src, dst, *args, **kwargs):
        # the second rename of the swap (the new checkpoint into place) fails
        if os.fspath(dst) == str(p) and os.fspath(src).endswith(".tmp"):
            raise PermissionError(13, "Permission denied")
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(PermissionError, match="cannot write checkpoint"):
        _orbax_save(p, 2, {"who": "new"})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == [NAME]
    meta, got = _read_checkpoint(p)
    assert meta == {"who": "old"} and _same(got, CONTENTS[0])


def test_orbax_save_works_where_the_file_system_refuses_locks(ocp, tmp_path, monkeypatch):
    def refuse(fd, op):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fmt.fcntl, "flock", refuse)
    p = tmp_path / NAME
    left = _group(tmp_path, "0123abcd", ["", ".old"])
    _age_tree(tmp_path, left, 2 * fmt._STALE_TEMP_AGE_S)
    _orbax_save(p, 2)
    _orbax_save(p, 1)
    assert sorted(os.listdir(tmp_path)) == sorted([NAME] + left)
    assert _same(_read_checkpoint(p)[1], CONTENTS[1])
