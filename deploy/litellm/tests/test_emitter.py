import logging
import os
import time

from conftest import FakeIngest, wait_for

from auditline_litellm import slots
from auditline_litellm.canonical import config_hash
from auditline_litellm.spool import KIND_OUTCOME, Spool


def outcome(call_id, status="success"):
    return {"id": "chatcmpl-" + call_id, "litellm_call_id": call_id, "status": status, "response_cost": 1e-05}


def seqs(events):
    return sorted(e["seq"] if "seq" in e else e["auditline"]["seq"] for e in events)


def test_events_reach_their_endpoints_in_order(make_emitter, ingest):
    em = make_emitter()
    em.start()
    for i in range(20):
        em.started("call-%d" % i, "k" * 64, "chat-a", "acompletion", False, "/v1/chat/completions")
        em.outcome(outcome("call-%d" % i))
    wait_for(lambda: len(ingest.events()) == 41, what="41 events")
    cfg = ingest.events("/config")
    assert len(cfg) == 1 and cfg[0]["seq"] == 1 and cfg[0]["reason"] == "start"
    assert cfg[0]["config_hash"] == config_hash(cfg[0]["config"])
    started = ingest.events("/started")
    outs = ingest.events("/litellm")
    assert len(started) == 20 and len(outs) == 20
    assert seqs(ingest.events()) == list(range(1, 42))  # gap-free
    m = started[0]
    assert m["schema"] == "auditline.request_started.v1" and m["request_key"] == "call-0"
    assert m["event_id"] == "%s/%d" % (em.spool.emitter, m["seq"])
    assert m["config_hash"] == cfg[0]["config_hash"] and m["config_seq"] == 1
    a = outs[0]["auditline"]
    assert a == {"emitter": em.spool.emitter, "seq": a["seq"], "config_hash": cfg[0]["config_hash"], "config_seq": 1}
    wait_for(lambda: em.spool.pending() == 0, what="spool drained")


def test_ingest_down_then_back_loses_nothing(make_emitter, ingest):
    ingest.script = [503] * 5 + [0] * 3  # 5xx, then timeouts
    em = make_emitter()
    em.start()
    for i in range(50):
        em.outcome(outcome("c%d" % i))
    wait_for(lambda: len(ingest.events("/litellm")) == 50, what="all outcomes")
    assert em.posts["retry"] == 8
    assert seqs(ingest.events()) == list(range(1, 52))


def test_refused_body_is_kept_and_logged_loudly(make_emitter, ingest, caplog):
    ingest.script = [401, 401, 403]
    em = make_emitter()
    with caplog.at_level(logging.ERROR, logger="auditline_litellm"):
        em.start()
        em.outcome(outcome("x"))
        wait_for(lambda: len(ingest.events("/litellm")) == 1, what="delivery after the token is fixed")
        # The sender marks itself delivering after the 2xx it got; the fake
        # ingest has recorded the events before it answers.
        wait_for(lambda: em.delivering, what="the emitter back to delivering")
    assert em.posts["refused"] == 3
    loud = [r for r in caplog.records if "REFUSED" in r.getMessage()]
    assert len(loud) == 3 and "Nothing is dropped" in loud[0].getMessage()


def test_too_large_halves_the_batch(make_emitter, ingest):
    em = make_emitter(linger=0.3)
    em.start()
    em.outcome(outcome("first"))  # the gateway_config goes with it, before the 413s
    wait_for(lambda: len(ingest.events("/litellm")) == 1)
    ingest.script = [413, 413]
    for i in range(40):
        em.outcome(outcome("b%d" % i))
    wait_for(lambda: len(ingest.events("/litellm")) == 41, what="all 40")
    assert em.posts["too_big"] == 2
    sizes = [len(evs) for url, evs in ingest.posts if url.endswith("/litellm")][1:]
    assert sizes[0] == 10  # 40 -> 20 -> 10 per POST, then growing again after successes


def test_config_change_is_announced_and_carried(make_emitter, ingest):
    em = make_emitter()
    em.start()
    em.outcome(outcome("before"))
    wait_for(lambda: len(ingest.events("/litellm")) == 1)
    make_emitter.config["doc"] = {"litellm_version": "1.106.2", "router_settings": {"num_retries": 5}}
    # the sender notices the change; the next event announces it
    wait_for(lambda: em._pending_config is not None, what="the change noticed")
    assert len(ingest.events("/config")) == 1
    em.outcome(outcome("after"))
    wait_for(lambda: len(ingest.events("/litellm")) == 2)
    wait_for(lambda: len(ingest.events("/config")) == 2, what="second gateway_config")
    cfgs = ingest.events("/config")
    assert cfgs[1]["reason"] == "change"
    after = ingest.events("/litellm")[1]["auditline"]
    assert after["config_hash"] == cfgs[1]["config_hash"] != cfgs[0]["config_hash"]
    assert after["config_seq"] == cfgs[1]["seq"]


def test_spool_full_is_a_counted_gap(make_emitter, ingest, caplog):
    ingest.default = 503  # nothing drains
    em = make_emitter(max_bytes=8192, segment_bytes=4096)
    em.start()
    with caplog.at_level(logging.ERROR, logger="auditline_litellm"):
        got = [em.outcome(dict(outcome("f%d" % i), pad="x" * 600)) for i in range(30)]
    assert 0 in got and em.refused["spool_full"] > 0
    assert any("SPOOL FULL" in r.getMessage() for r in caplog.records)
    assert (
        'auditline_litellm_events_refused_total{emitter="%s",slot="0",reason="spool_full"}' % em.spool.emitter
        in em.metrics_text()
    )
    ingest.default = 200
    wait_for(lambda: em.spool.pending() == 0, what="drain")
    em.outcome(outcome("after"))  # a loss at the tail is a gap once a later event arrives
    wait_for(lambda: em.spool.pending() == 0, what="drain")
    delivered = seqs(ingest.events())
    missing = sorted(set(range(1, delivered[-1] + 1)) - set(delivered))
    assert missing and len(missing) == em.refused["spool_full"]  # every refused event is a gap, no other


def test_restart_replays_and_continues_the_sequence(make_emitter, ingest, tmp_path):
    ingest.default = 503
    em = make_emitter()
    em.start()
    for i in range(10):
        em.outcome(outcome("r%d" % i))
    emitter_id = em.spool.emitter
    em.stop()
    ingest.default = 200
    em2 = make_emitter()
    em2.start()
    assert em2.spool.emitter == emitter_id and em2.slot.index == 0
    em2.outcome(outcome("new"))
    wait_for(lambda: em2.spool.pending() == 0)
    got = seqs(ingest.events())
    assert got == list(range(1, 14))  # config 1, outcomes 2-11, config again at start 12, outcome 13
    assert len(ingest.events("/litellm")) == 11
    assert [e["seq"] for e in ingest.events("/config")] == [1, 12]


def test_two_workers_take_two_slots(make_emitter, ingest):
    a, b = make_emitter(), make_emitter()
    a.start()
    b.start()
    assert (a.slot.index, b.slot.index) == (0, 1)
    assert a.spool.emitter != b.spool.emitter
    a.outcome(outcome("a"))
    b.outcome(outcome("b"))
    wait_for(lambda: len(ingest.events("/litellm")) == 2)
    per = {}
    for e in ingest.events():
        em = e.get("emitter") or e["auditline"]["emitter"]
        per.setdefault(em, []).append(e.get("seq") or e["auditline"]["seq"])
    assert sorted(map(sorted, per.values())) == [[1, 2], [1, 2]]


def test_orphan_slot_is_drained(make_emitter, ingest, tmp_path):
    spool_dir = tmp_path / "spool"
    orphan = Spool(str(spool_dir / "slot-1"), slot=1)
    for _ in range(3):
        orphan.append(KIND_OUTCOME, lambda seq: b'{"id":"o","status":"success","auditline":{"seq":%d}}' % seq)
    orphan.close()
    em = make_emitter(spool_dir=spool_dir)
    em.start()
    assert em.slot.index == 0
    wait_for(lambda: len(ingest.events("/litellm")) == 3, what="the orphan's 3 events")
    assert Spool(str(spool_dir / "slot-1"), slot=1).pending() == 0


def test_corrupted_spool_does_not_stop_the_start(make_emitter, ingest, tmp_path, caplog):
    d = tmp_path / "spool" / "slot-0"
    d.mkdir(parents=True)
    (d / ("seg-%020d.log" % 1)).write_bytes(os.urandom(3000))
    (d / "emitter.json").write_bytes(b"{{{")
    em = make_emitter()
    with caplog.at_level(logging.ERROR, logger="auditline_litellm"):
        em.start()
    assert any("quarantined" in r.getMessage() for r in caplog.records)
    em.outcome(outcome("ok"))
    wait_for(lambda: len(ingest.events("/litellm")) == 1)
    assert len(os.listdir(d / "quarantine")) >= 2


def test_slots_release_on_stop(tmp_path):
    s = slots.claim(str(tmp_path))
    assert s.index == 0
    assert slots.claim(str(tmp_path)).index == 1
    s.release()
    assert slots.claim(str(tmp_path)).index == 0


def test_status_file_and_metrics(make_emitter, ingest):
    em = make_emitter()
    em.start()
    em.outcome(outcome("m"))
    wait_for(lambda: em.delivered >= 2)
    em.write_status()
    import json

    st = json.load(open(os.path.join(em.slot.path, "status.json")))
    assert st["emitter"] == em.spool.emitter and st["events_delivered_total"] >= 2
    text = em.metrics_text()
    assert "# TYPE auditline_litellm_spool_bytes gauge" in text
    assert 'auditline_litellm_posts_total{emitter="%s",slot="0",result="ok"}' % em.spool.emitter in text


def test_fake_ingest_timeout_answer():
    f = FakeIngest()
    f.script = [0]
    assert f.post("http://x/v1/litellm", b"[]").kind == "retry"


def test_a_worker_that_serves_nothing_leaves_no_unaccounted_number(make_emitter, ingest, tmp_path):
    """The false one-number gap (issue 14): a worker that starts, would announce
    its configuration, and stops before serving anything. Its gateway_config
    number would be accounted for by no record. Announcements are lazy: every
    gateway_config number is followed by an event that carries it as
    config_seq, so every number some record accounts for is gap-free."""
    em = make_emitter()
    em.start()
    em.outcome(outcome("served"))
    wait_for(lambda: em.spool.pending() == 0, what="drain")
    em.stop()
    for _ in range(2):  # restarts on the same spool that serve nothing
        idle = make_emitter()
        idle.start()
        # noticed (however slow the box), then several more config checks of
        # the sender thread: still not announced
        wait_for(lambda em=idle: em._pending_config is not None, what="the configuration noticed")
        time.sleep(0.3)
        assert idle._pending_config is not None
        idle.stop()
    # a configuration change noticed and never served under: not announced either
    make_emitter.config["doc"] = {"litellm_version": "1.106.2", "router_settings": {"num_retries": 9}}
    last = make_emitter()
    last.start()
    last.outcome(outcome("after the idle restarts"))
    wait_for(lambda: last.spool.pending() == 0, what="drain")
    evs = ingest.events()
    assert seqs(evs) == list(range(1, len(evs) + 1))  # nothing consumed by the idle workers
    cfgs = ingest.events("/config")
    assert [c["seq"] for c in cfgs] == [1, 3] and all(c["reason"] == "start" for c in cfgs)
    # the ledger's rule: a number is accounted for by the event that carries it
    # or by an event that ran under it (config_seq); every number is
    accounted = set()
    for e in ingest.events("/litellm"):
        accounted |= {e["auditline"]["seq"], e["auditline"]["config_seq"]}
    assert accounted == set(range(1, len(evs) + 1))
