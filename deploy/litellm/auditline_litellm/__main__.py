"""auditline-litellm status [SPOOL_DIR]: what each spool slot holds, read-only.

For every slot-<n>/ of the spool directory (default $AUDITLINE_SPOOL_DIR or
./auditline-spool): the emitter id, whether a live process holds it, the
acknowledged cursor, the events waiting (with their sequence range), the
bytes, the quarantine report, and the worker's last status.json. It takes
no lock and changes nothing, so it is safe while the proxy runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import sys

from .spool import KIND_NAMES, KIND_TOMBSTONE, scan


def _held(path: str) -> bool:
    try:
        fd = os.open(os.path.join(path, "lock"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def slot_status(path: str) -> dict:
    out = {"slot": os.path.basename(path), "held_by_live_process": _held(path)}
    try:
        with open(os.path.join(path, "emitter.json")) as f:
            out["emitter"] = json.load(f).get("emitter")
    except (OSError, ValueError):
        out["emitter"] = None
    acked = 0
    try:
        with open(os.path.join(path, "acked"), "rb") as f:
            raw = f.read()
        if len(raw) == 12:
            acked = struct.unpack(">Q", raw[:8])[0]
    except OSError:
        pass
    out["acked"] = acked
    waiting, first, last, size, bad = {}, 0, 0, 0, 0
    for name in sorted(n for n in os.listdir(path) if n.startswith("seg-") and n.endswith(".log")):
        with open(os.path.join(path, name), "rb") as f:
            buf = f.read()
        size += len(buf)
        for what, a, b, rec in scan(buf):
            if what == "bad":
                bad += b - a
                continue
            if rec.seq <= acked or rec.kind == KIND_TOMBSTONE:
                continue
            k = KIND_NAMES.get(rec.kind, str(rec.kind))
            waiting[k] = waiting.get(k, 0) + 1
            first = first or rec.seq
            last = rec.seq
    out.update(waiting=waiting, waiting_seq=[first, last] if first else [], spool_bytes=size, unreadable_bytes=bad)
    try:
        with open(os.path.join(path, "quarantine", "REPORT")) as f:
            out["quarantine"] = f.read().splitlines()
    except OSError:
        out["quarantine"] = []
    try:
        with open(os.path.join(path, "status.json")) as f:
            out["last_status"] = json.load(f)
    except (OSError, ValueError):
        pass
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] != "status":
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    d = argv[1] if len(argv) > 1 else os.environ.get("AUDITLINE_SPOOL_DIR", "auditline-spool")
    if not os.path.isdir(d):
        print("no spool directory %s (set AUDITLINE_SPOOL_DIR or pass the directory)" % d, file=sys.stderr)
        return 1
    slots = sorted((n for n in os.listdir(d) if n.startswith("slot-")), key=lambda n: int(n[5:]) if n[5:].isdigit() else 1 << 30)
    json.dump([slot_status(os.path.join(d, n)) for n in slots], sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
