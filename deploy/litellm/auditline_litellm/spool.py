"""A durable, bounded, append-only spool of events, one per emitter.

Layout of one emitter's directory (a *slot*, see slots.py)::

    emitter.json            {"emitter": "<id>", "created": "<RFC 3339>"}
    acked                   the highest acknowledged sequence number (8 bytes + CRC-32)
    seg-<first seq>.log     segments: records in sequence order
    quarantine/             bytes that failed their checksum, with a REPORT file

Record = a 24-byte header and the event's bytes::

    magic  4  b"ALsp"
    kind   1  1 outcome, 2 request_started, 3 gateway_config, 15 tombstone
    ver    1  1
    resv   2  0
    seq    8  big-endian, gap-free per emitter
    length 4  payload bytes
    crc    4  CRC-32 (zlib) of header bytes 4..20 and the payload

Why segment files and not SQLite: the failure we must survive is a file
that is partly bad (a torn write when the process dies mid-append, a disk
that returns garbage). With self-describing records a reader skips exactly
the bad bytes (it resynchronises on the next magic whose checksum holds),
moves them to quarantine/ and keeps every good record around them; a
damaged SQLite file is usually lost whole. Appends are one write(2) of an
already-built record to a file opened O_APPEND, so the event loop never
waits for a lock held by the network sender, and segments are deleted whole
once acknowledged, so the spool never rewrites data in place.

Durability (fsync policy, `fsync=`):

* every append is one write(2) before the hook returns: the record is in
  the kernel's page cache, so it survives the proxy being killed (SIGKILL,
  OOM killer, a crash) at any point after that;
* "interval" (default, every `fsync_interval` seconds, 1 s): an operating
  system crash or power loss can lose the records of the last interval;
* "always": fsync after every append (slower: one disk flush per event,
  on the proxy's event loop);
* "never": the operating system decides.

The `acked` cursor is written without fsync (a stale cursor only re-sends
events, and ingest drops duplicates), except right before a segment is
deleted: then cursor and directory are fsynced first, so a deleted
segment can never be re-numbered after a power loss.

Bounded: appends that would take the spool past `max_bytes` are refused.
The refused event's sequence number is consumed all the same (a 24-byte
tombstone record keeps the numbering across restarts, outside the byte
budget), so the loss shows up in auditline as a sequence gap; the caller
counts it and logs it loudly.

Not thread-safe for appends from several threads at once without the lock:
every public method takes `self._lock`.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field

MAGIC = b"ALsp"
VERSION = 1
HEADER = struct.Struct(">4sBBHQII")
HEADER_SIZE = HEADER.size  # 24
MAX_RECORD = 64 << 20  # a length field above this is corruption, not data

KIND_OUTCOME = 1
KIND_STARTED = 2
KIND_CONFIG = 3
KIND_ATTEMPT = 4  # one upstream call of a request (attempts.py, issue 21)
KIND_TOMBSTONE = 15
KINDS = {KIND_OUTCOME, KIND_STARTED, KIND_CONFIG, KIND_ATTEMPT, KIND_TOMBSTONE}
KIND_NAMES = {KIND_OUTCOME: "outcome", KIND_STARTED: "request_started", KIND_CONFIG: "gateway_config", KIND_ATTEMPT: "attempt"}

FSYNC_POLICIES = ("interval", "always", "never")


class SpoolFull(Exception):
    """The append was refused: the spool holds max_bytes already."""


class SpoolWriteError(Exception):
    """The append failed in the file system (ENOSPC, EIO, ...)."""


@dataclass
class Record:
    seq: int
    kind: int
    payload: bytes


@dataclass
class Position:
    """Where the next unsent record starts: a segment's first seq and a byte offset."""

    segment: int
    offset: int


@dataclass
class _Segment:
    first: int  # seq in the file name
    path: str
    size: int = 0
    last: int = 0  # highest seq in it (0: none yet)


@dataclass
class Report:
    """What recovery found; the caller logs it."""

    quarantined: list = field(default_factory=list)  # (path in quarantine, bytes, why)
    recovered_records: int = 0
    cursor_reset: bool = False
    new_emitter: bool = False


def _crc(header_tail: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(header_tail)) & 0xFFFFFFFF


def encode(seq: int, kind: int, payload: bytes) -> bytes:
    tail = struct.pack(">BBHQI", kind, VERSION, 0, seq, len(payload))
    return MAGIC + tail + struct.pack(">I", _crc(tail, payload)) + payload


def _parse(buf: bytes, off: int):
    """The record at buf[off:], or None if none starts there (bad or incomplete)."""
    if len(buf) - off < HEADER_SIZE:
        return None
    magic, kind, ver, _resv, seq, length, crc = HEADER.unpack_from(buf, off)
    if magic != MAGIC or kind not in KINDS or ver != VERSION or length > MAX_RECORD:
        return None
    end = off + HEADER_SIZE + length
    if end > len(buf):
        return None
    payload = bytes(buf[off + HEADER_SIZE : end])
    if _crc(buf[off + 4 : off + 20], payload) != crc:
        return None
    return Record(seq, kind, payload), end


def scan(buf: bytes):
    """Yield ("rec", offset, end, Record) and ("bad", offset, end, None) over buf.

    A bad region runs from the first byte that does not start a valid record to
    the next offset that does (or the end). Resynchronising on the magic makes
    one flipped byte cost one record, not the rest of the segment.
    """
    off, n = 0, len(buf)
    while off < n:
        got = _parse(buf, off)
        if got is not None:
            rec, end = got
            yield "rec", off, end, rec
            off = end
            continue
        nxt = off + 1
        while True:
            nxt = buf.find(MAGIC, nxt)
            if nxt < 0:
                nxt = n
                break
            if _parse(buf, nxt) is not None:
                break
            nxt += 1
        yield "bad", off, nxt, None
        off = nxt


def _write_atomic(path: str, data: bytes, sync: bool) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        _fsync_dir(os.path.dirname(path))


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _seg_name(first: int) -> str:
    return "seg-%020d.log" % first


def new_emitter_id(slot: int) -> str:
    # ASCII letters, digits, '-' and '.', starting with a letter or digit (schemas/request-started.v1.json)
    host = "".join(c if (c.isascii() and c.isalnum()) or c in "-." else "-" for c in os.uname().nodename)
    host = host.lstrip("-.")[:40] or "host"
    return "%s-w%d-%s" % (host, slot, uuid.uuid4().hex[:12])


class Spool:
    """One emitter's spool. See the module doc for format and guarantees."""

    def __init__(
        self,
        directory: str,
        slot: int = 0,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 8 << 20,
        fsync: str = "interval",
        clock=time.time,
    ):
        if fsync not in FSYNC_POLICIES:
            raise ValueError("fsync must be one of %s, got %r" % (", ".join(FSYNC_POLICIES), fsync))
        if segment_bytes < 4096 or max_bytes < segment_bytes:
            raise ValueError("need 4096 <= segment_bytes <= max_bytes, got %d and %d" % (segment_bytes, max_bytes))
        self.dir = directory
        self.slot = slot
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_policy = fsync
        self._clock = clock
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._fd = -1  # append fd of the last segment
        self._dirty = False
        self.acked = 0
        self.next_seq = 1
        self.bytes = 0
        # counters (read by metrics; only ever increase)
        self.appended = 0
        self.refused_full = 0
        self.refused_error = 0
        self.quarantined_bytes = 0
        self.quarantine_events = 0
        os.makedirs(self.dir, exist_ok=True)
        self.report = Report()
        self.emitter = self._load_emitter()
        self._recover()

    # ---- recovery -------------------------------------------------------

    def _load_emitter(self) -> str:
        path = os.path.join(self.dir, "emitter.json")
        try:
            with open(path, "rb") as f:
                raw = f.read()
            doc = json.loads(raw)
            eid = doc["emitter"]
            if not isinstance(eid, str) or not eid or len(eid) > 128:
                raise ValueError("bad emitter id %r" % (eid,))
            return eid
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            self._quarantine_file(path, "emitter.json unreadable (%s); a new emitter id is created" % e)
        eid = new_emitter_id(self.slot)
        doc = {"emitter": eid, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))}
        _write_atomic(path, json.dumps(doc).encode(), sync=True)
        self.report.new_emitter = True
        return eid

    def _load_cursor(self) -> int:
        path = os.path.join(self.dir, "acked")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return 0
        if len(raw) == 12:
            seq, crc = struct.unpack(">QI", raw)
            if zlib.crc32(raw[:8]) & 0xFFFFFFFF == crc:
                return seq
        self._quarantine_file(path, "acked cursor unreadable; everything still spooled is sent again (ingest drops duplicates)")
        self.report.cursor_reset = True
        return 0

    def _quarantine_dir(self) -> str:
        q = os.path.join(self.dir, "quarantine")
        os.makedirs(q, exist_ok=True)
        return q

    def _note_quarantine(self, name: str, size: int, why: str) -> None:
        self.quarantined_bytes += size
        self.quarantine_events += 1
        self.report.quarantined.append((name, size, why))
        line = "%s\t%s\t%d bytes\t%s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())), name, size, why)
        with open(os.path.join(self._quarantine_dir(), "REPORT"), "a") as f:
            f.write(line)

    def _quarantine_file(self, path: str, why: str) -> None:
        q = self._quarantine_dir()
        dst = os.path.join(q, "%s.%d" % (os.path.basename(path), int(self._clock() * 1000)))
        try:
            size = os.path.getsize(path)
            os.replace(path, dst)
        except OSError:
            return
        self._note_quarantine(dst, size, why)

    def _quarantine_bytes(self, seg: str, off: int, data: bytes, why: str) -> None:
        q = self._quarantine_dir()
        dst = os.path.join(q, "%s.at%d.%d.bad" % (seg, off, int(self._clock() * 1000)))
        with open(dst, "wb") as f:
            f.write(data)
        self._note_quarantine(dst, len(data), why)

    def _recover(self) -> None:
        self.acked = self._load_cursor()
        top = self.acked
        names = sorted(n for n in os.listdir(self.dir) if n.startswith("seg-") and n.endswith(".log"))
        for n in os.listdir(self.dir):
            if n.endswith(".tmp"):  # an interrupted atomic write or rewrite
                try:
                    os.unlink(os.path.join(self.dir, n))
                except OSError:
                    pass
        for name in names:
            path = os.path.join(self.dir, name)
            try:
                first = int(name[4:-4])
            except ValueError:
                self._quarantine_file(path, "not a segment name")
                continue
            with open(path, "rb") as f:
                buf = f.read()
            good, bad, last = [], [], 0
            for what, off, end, rec in scan(buf):
                if what == "rec" and rec.seq > last:
                    good.append(buf[off:end])
                    last = rec.seq
                    if rec.kind != KIND_TOMBSTONE:
                        self.report.recovered_records += 1
                else:
                    bad.append((off, end))
            if bad:
                for off, end in bad:
                    torn = end == len(buf) and off > 0
                    why = (
                        "torn tail (the process died mid-append)"
                        if torn
                        else "checksum or framing error; records in these bytes are lost and show as a sequence gap"
                    )
                    self._quarantine_bytes(name, off, buf[off:end], why)
                if not good:
                    os.unlink(path)
                    continue
                data = b"".join(good)
                _write_atomic(path, data, sync=True)
                size = len(data)
            else:
                size = len(buf)
            if size == 0 and name != names[-1]:
                os.unlink(path)
                continue
            self._segments.append(_Segment(first=first, path=path, size=size, last=last))
            self.bytes += size
            top = max(top, last)
        self.next_seq = top + 1
        self._drop_acked_segments(sync=False)
        if not self._segments or self._segments[-1].size >= self.segment_bytes:
            self._new_segment()
        else:
            self._fd = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND)

    # ---- appending ------------------------------------------------------

    def _new_segment(self) -> None:
        if self._fd >= 0:
            if self.fsync_policy != "never":
                os.fsync(self._fd)
            os.close(self._fd)
        seg = _Segment(first=self.next_seq, path=os.path.join(self.dir, _seg_name(self.next_seq)))
        self._fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(self.dir)
        self._segments.append(seg)

    def _write(self, rec: bytes, seq: int) -> None:
        seg = self._segments[-1]
        try:
            view = memoryview(rec)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as e:
            try:  # never leave half a record behind
                os.ftruncate(self._fd, seg.size)
            except OSError:
                pass
            raise SpoolWriteError(str(e)) from e
        seg.size += len(rec)
        seg.last = seq
        self.bytes += len(rec)
        self._dirty = True
        if self.fsync_policy == "always":
            os.fsync(self._fd)
            self._dirty = False

    def append(self, kind: int, build) -> int:
        """Append one event and return its sequence number.

        build(seq) -> bytes makes the event's bytes (they embed the seq). On
        SpoolFull / SpoolWriteError the seq is consumed (a tombstone keeps it)
        and the exception carries it as .seq.
        """
        with self._lock:
            seq = self.next_seq
            self.next_seq += 1
            try:
                try:
                    payload = build(seq)
                except Exception as e:
                    raise SpoolWriteError("cannot build the event: %r" % (e,)) from e
                rec = encode(seq, kind, payload)
                if self.bytes + len(rec) > self.max_bytes:
                    self.refused_full += 1
                    self._tombstone(seq)
                    err = SpoolFull("spool full: %d of %d bytes used" % (self.bytes, self.max_bytes))
                    err.seq = seq
                    raise err
                if self._segments[-1].size and self._segments[-1].size + len(rec) > self.segment_bytes:
                    self._new_segment()
                self._write(rec, seq)
            except SpoolWriteError as e:
                self.refused_error += 1
                self._tombstone(seq)
                e.seq = seq
                raise
            self.appended += 1
            return seq

    def _tombstone(self, seq: int) -> None:
        # Outside the byte budget (24 bytes): keeps seq from being reused after
        # a restart, so a refused event stays a visible gap.
        try:
            self._write(encode(seq, KIND_TOMBSTONE, b""), seq)
        except (SpoolWriteError, OSError):
            pass

    def sync(self) -> None:
        """fsync the segment being appended to, if anything was written since."""
        with self._lock:
            if self._dirty and self._fd >= 0 and self.fsync_policy != "never":
                os.fsync(self._fd)
            self._dirty = False

    # ---- reading and acknowledging ---------------------------------------

    def start(self) -> Position:
        """The position of the first record after the acked cursor."""
        with self._lock:
            seg = self._segments[0]
            return Position(seg.first, 0)

    def pending(self) -> int:
        """Sequence numbers appended and not yet acknowledged (tombstones included)."""
        with self._lock:
            return max(0, self.next_seq - 1 - self.acked)

    def read(self, pos: Position, max_records: int, max_bytes: int):
        """Read up to max_records unacknowledged records (tombstones skipped) from pos.

        Returns (records, next position, last seq covered). Records at or below
        the acked cursor are skipped. A bad region met here (the file changed
        under us) is quarantined and skipped.
        """
        out, size, last = [], 0, 0
        with self._lock:
            segs = [(s.first, s.path, s.size) for s in self._segments if s.first >= pos.segment]
        for first, path, seg_size in segs:
            off = pos.offset if first == pos.segment else 0
            if off >= seg_size:
                pos = Position(first, seg_size)
                continue
            with open(path, "rb") as f:
                f.seek(off)
                buf = f.read(seg_size - off)
            for what, a, b, rec in scan(buf):
                if what == "bad":
                    with self._lock:
                        self._quarantine_bytes(
                            os.path.basename(path),
                            off + a,
                            buf[a:b],
                            "checksum error found while sending; those records are lost",
                        )
                    pos = Position(first, off + b)
                    continue
                if len(out) >= max_records or (out and size + len(rec.payload) > max_bytes):
                    return out, pos, last
                pos = Position(first, off + b)
                if rec.seq <= self.acked:
                    continue
                last = rec.seq
                if rec.kind == KIND_TOMBSTONE:
                    continue
                out.append(rec)
                size += len(rec.payload)
        return out, pos, last

    def ack(self, seq: int) -> None:
        """Everything up to seq is durable at ingest: advance the cursor, drop whole segments."""
        with self._lock:
            if seq <= self.acked:
                return
            self.acked = seq
            active = self._segments[-1]
            if active.last and active.last <= seq and active.size >= min(self.segment_bytes, 1 << 20):
                self._new_segment()
            doomed = [s for s in self._segments[:-1] if s.last <= seq]
            self._write_cursor(sync=bool(doomed))
            self._drop_acked_segments(sync=False)

    def _write_cursor(self, sync: bool) -> None:
        raw = struct.pack(">Q", self.acked)
        _write_atomic(os.path.join(self.dir, "acked"), raw + struct.pack(">I", zlib.crc32(raw) & 0xFFFFFFFF), sync)

    def _drop_acked_segments(self, sync: bool) -> None:
        keep = []
        for i, s in enumerate(self._segments):
            last_one = i == len(self._segments) - 1
            if not last_one and s.last <= self.acked:
                try:
                    os.unlink(s.path)
                except FileNotFoundError:
                    pass
                self.bytes -= s.size
            else:
                keep.append(s)
        self._segments = keep

    def segments(self) -> int:
        with self._lock:
            return len(self._segments)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                if self.fsync_policy != "never":
                    try:
                        os.fsync(self._fd)
                    except OSError:
                        pass
                os.close(self._fd)
                self._fd = -1
