import errno
import os
import re

import pytest

from auditline_litellm import spool as sp
from auditline_litellm.spool import (
    HEADER_SIZE,
    KIND_OUTCOME,
    KIND_STARTED,
    Spool,
    SpoolFull,
    SpoolWriteError,
    encode,
    scan,
)


def payload(seq, size=40):
    body = b'{"seq":%d}' % seq
    return body + b" " * max(0, size - len(body))


def fill(s, n, kind=KIND_OUTCOME, size=40):
    return [s.append(kind, lambda seq: payload(seq, size)) for _ in range(n)]


def read_all(s, max_records=10_000, max_bytes=1 << 30):
    recs, _, _ = s.read(s.start(), max_records, max_bytes)
    return recs


def segs(d):
    return sorted(n for n in os.listdir(d) if n.startswith("seg-"))


def test_sequence_is_gap_free_and_survives_restart(tmp_path):
    s = Spool(str(tmp_path))
    assert fill(s, 5) == [1, 2, 3, 4, 5]
    emitter = s.emitter
    s.close()
    s = Spool(str(tmp_path))
    assert s.emitter == emitter
    assert [r.seq for r in read_all(s)] == [1, 2, 3, 4, 5]
    assert s.append(KIND_STARTED, payload) == 6
    assert [r.payload for r in read_all(s)][-1].startswith(b'{"seq":6}')


def test_ack_removes_whole_segments_and_numbering_continues(tmp_path):
    s = Spool(str(tmp_path), segment_bytes=4096, max_bytes=1 << 20)
    fill(s, 200, size=200)  # ~45 KB: several segments
    assert len(segs(tmp_path)) > 5
    recs, pos, last = s.read(s.start(), 10_000, 1 << 30)
    assert last == 200 and len(recs) == 200
    s.ack(last)
    assert len(segs(tmp_path)) == 1  # only the fresh active segment
    assert s.pending() == 0
    s.close()
    s = Spool(str(tmp_path), segment_bytes=4096, max_bytes=1 << 20)
    assert s.pending() == 0
    assert s.append(KIND_OUTCOME, payload) == 201  # from the cursor: never reused


def test_read_honours_limits_and_resumes(tmp_path):
    s = Spool(str(tmp_path), segment_bytes=4096)
    fill(s, 50, size=100)
    got, pos = [], s.start()
    while True:
        recs, pos, last = s.read(pos, 7, 350)
        if not recs:
            break
        assert len(recs) <= 7 and sum(len(r.payload) for r in recs) <= 350
        got += [r.seq for r in recs]
    assert got == list(range(1, 51))


def test_partial_ack_replays_only_the_rest(tmp_path):
    s = Spool(str(tmp_path))
    fill(s, 10)
    s.ack(6)
    s.close()
    s = Spool(str(tmp_path))
    assert [r.seq for r in read_all(s)] == [7, 8, 9, 10]


def test_torn_tail_is_cut_and_quarantined(tmp_path):
    s = Spool(str(tmp_path))
    fill(s, 4)
    s.close()
    seg = os.path.join(tmp_path, segs(tmp_path)[-1])
    size = os.path.getsize(seg)
    with open(seg, "r+b") as f:  # the process died in the middle of record 4
        f.truncate(size - 20)
    s = Spool(str(tmp_path))
    assert [r.seq for r in read_all(s)] == [1, 2, 3]
    assert s.report.quarantined and "torn tail" in s.report.quarantined[0][2]
    assert s.append(KIND_OUTCOME, payload) == 4  # record 4 never became durable: its number is free
    assert os.path.exists(os.path.join(tmp_path, "quarantine", "REPORT"))


def test_random_bytes_in_the_middle_cost_only_the_damaged_record(tmp_path):
    s = Spool(str(tmp_path))
    fill(s, 10, size=100)
    s.close()
    seg = os.path.join(tmp_path, segs(tmp_path)[-1])
    rec_len = HEADER_SIZE + 100
    with open(seg, "r+b") as f:  # scribble over the payload of record 5
        f.seek(4 * rec_len + HEADER_SIZE + 10)
        f.write(os.urandom(30))
    s = Spool(str(tmp_path))
    seqs = [r.seq for r in read_all(s)]
    assert seqs == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert len(s.report.quarantined) == 1
    name, size, why = s.report.quarantined[0]
    assert size == rec_len and "checksum" in why and os.path.exists(name)
    assert s.append(KIND_OUTCOME, payload) == 11  # 5 stays a gap: it was written once


def test_segment_of_garbage_is_quarantined_and_the_spool_goes_on(tmp_path):
    s = Spool(str(tmp_path), segment_bytes=4096)
    fill(s, 40, size=200)
    s.close()
    names = segs(tmp_path)
    assert len(names) >= 2
    with open(os.path.join(tmp_path, names[0]), "wb") as f:
        f.write(os.urandom(5000))
    with open(os.path.join(tmp_path, "seg-%020d.log" % 999999), "wb") as f:
        f.write(b"\x00" * 100)  # a stray file of zeros
    s = Spool(str(tmp_path), segment_bytes=4096)
    seqs = [r.seq for r in read_all(s)]
    assert seqs and seqs[-1] == 40 and 1 not in seqs
    assert s.report.quarantined
    assert s.append(KIND_OUTCOME, payload) == 41


def test_unreadable_emitter_and_cursor(tmp_path):
    s = Spool(str(tmp_path))
    fill(s, 3)
    s.ack(2)
    old = s.emitter
    s.close()
    with open(os.path.join(tmp_path, "emitter.json"), "wb") as f:
        f.write(b"\xff\x00 not json")
    with open(os.path.join(tmp_path, "acked"), "wb") as f:
        f.write(b"garbage!")
    s = Spool(str(tmp_path))
    assert s.emitter != old and s.report.new_emitter
    assert s.report.cursor_reset
    assert [r.seq for r in read_all(s)] == [1, 2, 3]  # sent again: ingest drops duplicates
    assert len(os.listdir(os.path.join(tmp_path, "quarantine"))) == 3  # 2 files + REPORT


def test_full_spool_refuses_and_the_gap_survives_restart(tmp_path):
    s = Spool(str(tmp_path), segment_bytes=4096, max_bytes=8192)
    n = 0
    with pytest.raises(SpoolFull) as exc:
        while True:
            s.append(KIND_OUTCOME, lambda seq: payload(seq, 500))
            n += 1
    refused = exc.value.seq
    assert refused == n + 1 and s.refused_full == 1
    assert s.bytes <= 8192 + HEADER_SIZE
    s.close()
    s = Spool(str(tmp_path), segment_bytes=4096, max_bytes=8192)
    recs, _, last = s.read(s.start(), 10_000, 1 << 30)
    s.ack(last)
    assert s.append(KIND_OUTCOME, payload) == refused + 1  # the refused number is never reused
    assert [r.seq for r in recs] == list(range(1, refused))


def test_write_error_leaves_no_torn_record(tmp_path, monkeypatch):
    s = Spool(str(tmp_path))
    fill(s, 2)
    real = os.write
    calls = {"n": 0}

    def failing(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            real(fd, bytes(data)[:10])  # half a record, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(sp.os, "write", failing)
    with pytest.raises(SpoolWriteError) as exc:
        s.append(KIND_OUTCOME, payload)
    assert exc.value.seq == 3
    monkeypatch.setattr(sp.os, "write", real)
    assert s.append(KIND_OUTCOME, payload) == 4
    s.close()
    s = Spool(str(tmp_path))
    assert [r.seq for r in read_all(s)] == [1, 2, 4]
    assert not s.report.quarantined


def test_build_error_consumes_the_number(tmp_path):
    s = Spool(str(tmp_path))

    def boom(seq):
        raise TypeError("not serialisable")

    with pytest.raises(SpoolWriteError):
        s.append(KIND_OUTCOME, boom)
    assert s.append(KIND_OUTCOME, payload) == 2


def test_scan_resynchronises_on_magic():
    recs = [encode(i, KIND_OUTCOME, b"x" * i) for i in range(1, 6)]
    buf = recs[0] + b"GARBAGE" + recs[1] + recs[2][:-1] + b"ALsp" + recs[3] + recs[4]
    kinds = [(what, rec.seq if rec else None) for what, _, _, rec in scan(buf)]
    assert kinds == [("rec", 1), ("bad", None), ("rec", 2), ("bad", None), ("rec", 4), ("rec", 5)]


@pytest.mark.parametrize("policy", ["always", "never", "interval"])
def test_fsync_policies(tmp_path, policy):
    s = Spool(str(tmp_path), fsync=policy)
    fill(s, 3)
    s.sync()
    s.close()
    assert [r.seq for r in read_all(Spool(str(tmp_path)))] == [1, 2, 3]


def test_bad_settings():
    with pytest.raises(ValueError):
        Spool("/tmp/unused-spool-dir-x", fsync="sometimes")
    with pytest.raises(ValueError):
        Spool("/tmp/unused-spool-dir-x", segment_bytes=10)


def test_emitter_id_is_ascii_whatever_the_host_name(monkeypatch):
    class U:
        nodename = "-.Ünïcode host_1"

    monkeypatch.setattr(sp.os, "uname", lambda: U())
    eid = sp.new_emitter_id(3)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", eid), eid  # schemas/request-started.v1.json
    assert "-w3-" in eid
