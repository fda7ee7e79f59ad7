"""Kill a real writer process with SIGKILL at many points and check what a reader sees after each kill.

A long-lived "zygote" process imports everything once; for every kill it forks a writer that saves the version the
folder does not hold (A and B alternate from kill to kill) and then idles. The test sleeps a random time, SIGKILLs
the writer, has the zygote reap it, and loads the folder: it must be exactly A or exactly B ("old" if the kill came
before the writer's swap, "new" after it). 100 kills take seconds because no writer pays the import cost.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Run before the writer's own code: a writer SIGKILLed inside a tqdm progress bar would leave tqdm's default lock (a
# multiprocessing semaphore, shared by every process forked from the zygote) held forever, and its monitor thread
# could hold it at fork time; every later writer would then hang.
_PRELUDE = r"""
import threading
import tqdm

tqdm.tqdm.monitor_interval = 0
tqdm.tqdm.set_lock(threading.RLock())
"""

_LOOP = r'''
import os, sys, time, traceback

_out = sys.stdout.buffer


def _say(*words):
    _out.write((" ".join(str(w) for w in words) + "\n").encode())
    _out.flush()


def _writer(versions, idle):
    """Runs in a forked child: saves each version once, then exits (or idles until killed); never returns."""
    try:
        for version in versions:
            save(version)
        while idle:
            time.sleep(1)
        os._exit(0)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


if "warm_up" in globals():
    warm_up()  # first-call costs (lazy imports, templates) paid once here, not in every forked writer
_say("ready")
for _raw in sys.stdin.buffer:
    _cmd = _raw.decode().split()
    if not _cmd:
        continue
    if _cmd[0] == "bench":  # save the listed versions once, in a child; report seconds per save
        _t = time.perf_counter()
        _pid = os.fork()
        if _pid == 0:
            _writer(_cmd[1:], idle=False)
        _, _status = os.waitpid(_pid, 0)
        _say("bench", os.waitstatus_to_exitcode(_status), (time.perf_counter() - _t) / (len(_cmd) - 1))
    elif _cmd[0] == "run":  # a writer that saves _cmd[1], then idles until it is killed
        _pid = os.fork()
        if _pid == 0:
            _writer([_cmd[1]], idle=True)
        _say("pid", _pid)
    elif _cmd[0] == "reap":
        _, _status = os.waitpid(int(_cmd[1]), 0)
        _say("reaped", os.waitstatus_to_exitcode(_status))
'''


@dataclass
class KillStats:
    """What the kill loop saw: `old` / `new` count kills after which the folder held the version from before the
    writer started / the one it was writing; `mid_save` counts kills that left a staging folder behind, and
    `between_renames` those that left the folder missing (the fallback's window, finished by the loader)."""

    kills: int = 0
    old: int = 0
    new: int = 0
    mid_save: int = 0
    between_renames: int = 0
    seconds: float = 0.0
    save_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.kills} SIGKILLs in {self.seconds:.1f} s (one save {1000 * self.save_seconds:.1f} ms); "
            f"afterwards old version {self.old}, new version {self.new}; {self.mid_save} kills landed mid-save, "
            f"{self.between_renames} between the fallback's two renames"
        )


class _Zygote:
    def __init__(self, code: str, dest: Path, timeout: float):
        self.stderr = open(dest.parent / f"{dest.name}.zygote.log", "wb")  # noqa: SIM115 - closed in close()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PRELUDE + code + _LOOP, str(dest)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            bufsize=0,
            env=env,
        )
        self.timeout = timeout
        self.buf = b""

    def send(self, *words) -> None:
        self.proc.stdin.write((" ".join(str(w) for w in words) + "\n").encode())

    def read(self) -> list[str]:
        deadline = time.monotonic() + self.timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"the writer process did not answer within {self.timeout} s: {self.log()}")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the writer process exited: {self.log()}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().split()

    def log(self) -> str:
        self.stderr.flush()
        return Path(self.stderr.name).read_text(errors="replace")[-3000:]

    def close(self) -> None:
        import psutil

        # writers still running (a hung one, say) would outlive the test: kill the zygote's children first
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def kill_loop(
    code: str,
    dest: Path,
    check: Callable[[Path], str],
    n_kills: int,
    *,
    seed: int = 0,
    timeout: float = 60.0,
) -> KillStats:
    """Run the kill loop and return its counts; `check(dest)` must return `"A"` or `"B"` (or raise).

    Args:
        code (`str`): Python source run in the zygote with `sys.argv[1]` = `dest`; it must define `save(version)` for
            the versions `"A"` and `"B"`, and may define `warm_up()` (run once before forking writers; it should
            save once elsewhere, so writers do not spend their first milliseconds importing).
        dest (`Path`): the artefact folder.
        check (`Callable[[Path], str]`): loads `dest` in this process and says which version it is.
        n_kills (`int`): how many writers to kill.
        seed (`int`): seeds the kill delays.
        timeout (`float`): the longest wait for any answer of the zygote.
    """
    rng = random.Random(seed)
    stats = KillStats()
    t0 = time.perf_counter()
    zygote = _Zygote(code, dest, timeout)
    pid = None
    try:
        assert zygote.read() == ["ready"]
        zygote.send("bench", "B", "A", "B", "A")
        tag, rc, per_save = zygote.read()
        assert tag == "bench" and rc == "0", f"the writer failed: {zygote.log()}"
        stats.save_seconds = float(per_save)
        current = check(dest)
        assert current == "A"
        staging = f".{dest.name}.semcore-tmp-"
        # Kill delays are uniform in [0, 2 * scale * one save]. A writer's save takes longer than the bench (it also
        # removes the staging folder of the writer killed before), and the machine may get busier: `scale` adapts
        # so that about half the kills land before the swap and half after it (a kill after the swap always gives
        # "new", so this cannot run away).
        scale = 1.0
        for _ in range(n_kills):
            first = "B" if current == "A" else "A"
            zygote.send("run", first)
            tag, pid = zygote.read()
            assert tag == "pid"
            time.sleep(rng.uniform(0.0, 2.0 * scale * stats.save_seconds))
            os.kill(int(pid), signal.SIGKILL)
            zygote.send("reap", pid)
            tag, rc = zygote.read()
            assert tag == "reaped" and rc == str(-signal.SIGKILL), f"the writer died by itself: {zygote.log()}"
            pid = None
            stats.kills += 1
            left = [dest.parent / n for n in os.listdir(dest.parent) if n.startswith(staging)]
            stats.mid_save += bool(left)
            stats.between_renames += not dest.exists()
            for w in left:  # what a killed writer leaves must be recognisable, or the next save cannot remove it
                assert (w / ".semcore_staging").is_file() or not os.listdir(w), f"unmarked leftover {w.name}"
            seen = check(dest)
            assert seen in ("A", "B"), seen
            stats.outcomes[seen] = stats.outcomes.get(seen, 0) + 1
            if seen == current:
                stats.old += 1
                scale = min(scale * 1.15, 50.0)
            else:
                stats.new += 1
                scale = max(scale / 1.15, 0.02)
            current = seen
        # one more complete save removes whatever the last killed writer left
        zygote.send("bench", "B" if current == "A" else "A")
        tag, rc, _ = zygote.read()
        assert tag == "bench" and rc == "0", f"the writer failed: {zygote.log()}"
        assert check(dest) != current
        assert not [n for n in os.listdir(dest.parent) if n.startswith(f".{dest.name}.semcore-")]
    finally:
        if pid is not None:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        zygote.close()
    stats.seconds = time.perf_counter() - t0
    return stats
