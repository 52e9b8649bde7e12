import asyncio
import hashlib
import os

from conftest import wait_for

from auditline_litellm.runtime import AuditlineCallback, key_hash


class Key:
    api_key = "a" * 64
    request_route = "/v1/chat/completions"


def run(coro):
    return asyncio.run(coro)


def test_key_hash_never_sends_a_raw_key():
    assert key_hash("b" * 64) == "b" * 64
    assert key_hash("litellm_proxy_master_key") == "litellm_proxy_master_key"
    assert key_hash("sk-1234") == hashlib.sha256(b"sk-1234").hexdigest()
    assert key_hash(None) == ""


def test_hooks_spool_marker_and_outcomes(make_emitter, ingest):
    cb = AuditlineCallback(make_emitter())
    data = {"litellm_call_id": "call-1", "model": "chat-a", "stream": True}
    assert run(cb.async_pre_call_hook(Key(), None, data, "acompletion")) is None
    slp = {"id": "chatcmpl-1", "litellm_call_id": "call-1", "status": "success"}
    run(cb.async_log_success_event({"standard_logging_object": slp}, None, None, None))
    run(cb.async_log_failure_event({"litellm_call_id": "call-2"}, None, None, None))  # no payload built
    wait_for(lambda: len(ingest.events("/litellm")) == 2)
    m = ingest.events("/started")[0]
    assert (m["request_key"], m["requested_model"], m["stream"], m["key_hash"], m["route"], m["call_type"]) == (
        "call-1",
        "chat-a",
        True,
        "a" * 64,
        "/v1/chat/completions",
        "acompletion",
    )
    outs = ingest.events("/litellm")
    assert outs[0]["id"] == "chatcmpl-1" and outs[0]["auditline"]["seq"] == 3
    assert outs[1]["litellm_call_id"] == "call-2" and outs[1]["status"] == "failure"
    assert "standard_logging_object" in outs[1]["auditline_note"]
    assert "auditline" not in slp  # LiteLLM's own dict is not modified


def test_hooks_never_raise(make_emitter, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    em = make_emitter(spool_dir=blocker)  # the spool cannot be created
    cb = AuditlineCallback(em)
    assert run(cb.async_pre_call_hook(Key(), None, {"litellm_call_id": "c"}, "acompletion")) is None
    run(cb.async_log_success_event({"standard_logging_object": {"id": "x", "status": "success"}}, None, None, None))
    assert not os.path.isdir(blocker)
