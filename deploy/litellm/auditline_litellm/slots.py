"""Spool slots: one spool directory per proxy worker process.

`litellm --num_workers N` runs N processes that each load the callback. Each
claims the lowest free slot `<spool dir>/slot-<n>/` by taking an exclusive
flock(2) on `slot-<n>/lock`. The lock dies with its process (SIGKILL
included), so a restarted worker claims the slot its predecessor held,
replays what it left, and continues its emitter's sequence: the emitter id
lives in the slot (`emitter.json`), so it is stable per proxy instance and
worker slot, not per process.

A slot nobody holds may still contain unsent events (the proxy now runs
fewer workers). `orphans()` lists such slots; the emitter drains them
(holding their lock while it does) without appending to them.
"""

from __future__ import annotations

import fcntl
import os

MAX_SLOTS = 256


class Slot:
    def __init__(self, index: int, path: str, fd: int):
        self.index = index
        self.path = path
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = -1


def _try_lock(path: str):
    os.makedirs(path, exist_ok=True)
    fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return -1
    os.ftruncate(fd, 0)
    os.write(fd, b"%d\n" % os.getpid())
    return fd


def claim(spool_dir: str) -> Slot:
    """Take the lowest free slot of spool_dir (creating it if needed)."""
    os.makedirs(spool_dir, exist_ok=True)
    for i in range(MAX_SLOTS):
        path = os.path.join(spool_dir, "slot-%d" % i)
        fd = _try_lock(path)
        if fd >= 0:
            return Slot(i, path, fd)
    raise RuntimeError("all %d spool slots of %s are locked by live processes" % (MAX_SLOTS, spool_dir))


def orphans(spool_dir: str, exclude: int):
    """Yield (locked) slots other than exclude that no live process holds."""
    try:
        names = sorted(os.listdir(spool_dir))
    except FileNotFoundError:
        return
    for name in names:
        if not name.startswith("slot-"):
            continue
        try:
            i = int(name[5:])
        except ValueError:
            continue
        if i == exclude:
            continue
        path = os.path.join(spool_dir, name)
        if not os.path.exists(os.path.join(path, "emitter.json")):
            continue
        fd = _try_lock(path)
        if fd >= 0:
            yield Slot(i, path, fd)
