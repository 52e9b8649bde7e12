"""attempts.py: the router's deployment hooks become numbered attempt events (issue 21)."""

import asyncio

from conftest import wait_for

from auditline_litellm.attempts import AttemptTracker, classify, describe
from auditline_litellm.runtime import AuditlineCallback


class Clock:
    def __init__(self):
        self.t = 1_700_000_000.0

    def __call__(self):
        self.t += 0.25
        return self.t


class LoggingObj:
    """Stands for LiteLLM's per-call Logging object (only its identity matters)."""


def call(call_id, group, dep, model, obj=None, **extra):
    kw = {
        "litellm_call_id": call_id,
        "model": model,
        "metadata": {
            "model_group": group,
            "deployment": model,
            "model_info": {"id": dep},
            "api_base": "http://up/v1",
        },
        "litellm_logging_obj": obj or LoggingObj(),
    }
    kw.update(extra)
    return kw


class ServiceUnavailableError(Exception):
    status_code = 503


class RateLimitError(Exception):
    status_code = 429


class Timeout(Exception):
    status_code = 408


def tracker():
    out = []
    t = AttemptTracker(lambda doc: out.append(doc) or len(out), clock=Clock())
    return t, out


def route(out):
    return [
        (d["attempt"], d["kind"], d["model_group"], d["fallback_from"], d["deployment_id"], d["status"], d.get("error_code", ""))
        for d in out
    ]


def test_all_fail_then_fallback_fails():
    t, out = tracker()
    for group, dep, depth in [
        ("chat-a", "a-west", None),
        ("chat-a", "a-west", None),
        ("chat-a", "a-east", None),
        ("chat-b", "b-1", 1),
        ("chat-b", "b-2", 1),
        ("chat-b", "b-2", 1),
    ]:
        kw = call("c1", group, dep, "openai/" + dep)
        t.opened(kw)
        t.failed(kw, ServiceUnavailableError("down"), depth)
        if len(out) == 1:
            # LiteLLM logs the first failure while the router goes on
            assert t.outcome("c1", {"status": "failure"}) == 1
    t.finished("c1", ServiceUnavailableError("all down"))
    assert route(out) == [
        (1, "first", "chat-a", "", "a-west", "failure", "503"),
        (2, "retry", "chat-a", "", "a-west", "failure", "503"),
        (3, "retry", "chat-a", "", "a-east", "failure", "503"),
        (4, "fallback", "chat-b", "chat-a", "b-1", "failure", "503"),
        (5, "retry", "chat-b", "", "b-2", "failure", "503"),
        (6, "retry", "chat-b", "", "b-2", "failure", "503"),
    ]
    assert out[3]["fallback_depth"] == 1 and out[0]["fallback_depth"] == 0
    assert out[0]["error_class"] == "ServiceUnavailableError" and out[0]["provider"] == "openai"
    assert all(d["start_time"] < d["end_time"] for d in out)
    assert t.pending() == 0


def test_timeouts_are_timeouts():
    t, out = tracker()
    kw = call("c2", "chat-b", "b-1", "azure/gpt-b-1")
    t.opened(kw)
    t.failed(kw, Timeout("Request timed out"))
    d = out[0]
    assert d["timeout"] is True and d["error_class"] == "Timeout" and d["error_code"] == "408"
    assert d["provider"] == "azure"
    assert classify(TimeoutError("x"))["error_class"] == "Timeout"


def test_429_then_success_and_the_outcome_counts():
    t, out = tracker()
    kw = call("c3", "chat-a", "a-west", "openai/a")
    t.opened(kw)
    t.failed(kw, RateLimitError("slow down"))
    kw = call("c3", "chat-a", "a-east", "openai/b")
    t.opened(kw)
    t.succeeded(kw)
    assert t.outcome("c3", {"status": "failure"}) == 2  # a late first-failure payload
    assert t.outcome("c3", {"status": "success"}) == 2
    assert route(out) == [
        (1, "first", "chat-a", "", "a-west", "failure", "429"),
        (2, "retry", "chat-a", "", "a-east", "success", ""),
    ]
    assert t.pending() == 0


def test_stream_ends_with_its_success_log():
    t, out = tracker()
    kw = call("c4", "chat-broken", "x", "openai/fail-429", stream=True)
    t.opened(kw)
    t.failed(kw, RateLimitError("no"))
    kw = call("c4", "chat-a", "a-east", "openai/a", stream=True)
    t.opened(kw)  # the stream starts: no success hook
    assert len(out) == 1
    assert t.outcome("c4", {"status": "success", "cache_hit": False}) == 2
    assert route(out)[1] == (2, "fallback", "chat-a", "chat-broken", "a-east", "success", "")
    assert out[1]["stream"] is True


def test_cache_hit_is_not_an_attempt():
    t, out = tracker()
    t.opened(call("c5", "chat-a", "a-east", "openai/a"))
    assert t.outcome("c5", {"status": "success", "cache_hit": True}) == 0
    assert out == [] and t.pending() == 0


def test_chain_depth_two():
    t, out = tracker()
    for group, depth, exc in [("A", None, ServiceUnavailableError("x")), ("B", 1, RateLimitError("y")), ("C", 2, None)]:
        kw = call("c6", group, group.lower() + "1", "openai/" + group)
        t.opened(kw)
        if exc:
            t.failed(kw, exc, depth)
        else:
            t.succeeded(kw)
    assert [(d["kind"], d["model_group"], d["fallback_from"], d["fallback_depth"]) for d in out] == [
        ("first", "A", "", 0),
        ("fallback", "B", "A", 1),
        ("fallback", "C", "B", 0),
    ]


def test_requests_do_not_mix_and_state_is_bounded():
    t, out = tracker()
    a, b = call("r1", "g", "d1", "openai/m"), call("r2", "g", "d2", "openai/m")
    t.opened(a)
    t.opened(b)
    t.failed(b, RateLimitError("x"))
    t.succeeded(a)
    assert [(d["request_key"], d["attempt"], d["kind"]) for d in out] == [("r2", 1, "first"), ("r1", 1, "first")]
    t.max_requests = 2
    t.opened(call("r3", "g", "d", "openai/m"))  # over the bound: not tracked
    assert t.pending() == 2
    assert t.outcome("r3", {"status": "success"}) == 0
    # no call id: nothing to join it to
    t.opened({"model": "x"})
    assert t.pending() == 2


def test_describe_reads_litellm_metadata_and_kwargs():
    d = describe(
        {"model": "anthropic/claude", "litellm_metadata": {"model_group": "g", "model_info": {"id": "i"}}, "fallback_depth": 2}
    )
    assert (d["model_group"], d["deployment_id"], d["provider"], d["fallback_depth"]) == ("g", "i", "anthropic", 2)
    assert describe({})["model_group"] == ""


def test_callback_spools_attempts_and_announces_them(make_emitter, ingest):
    em = make_emitter()
    em.start()
    cb = AuditlineCallback(em)

    async def run():
        kw = call("c7", "chat-a", "a-west", "openai/a")
        await cb.async_pre_call_deployment_hook(kw, "acompletion")
        await cb.async_post_call_failure_deployment_hook(kw, ServiceUnavailableError("x"), "acompletion", fallback_depth=None)
        await cb.async_log_failure_event(
            {"standard_logging_object": {"id": "p1", "litellm_call_id": "c7", "status": "failure"}}, None, 0, 0
        )
        kw = call("c7", "chat-b", "b-1", "openai/b", fallback_depth=1)
        assert await cb.async_pre_call_deployment_hook(kw, "acompletion") is None
        assert await cb.async_post_call_success_deployment_hook(kw, object(), "acompletion") is None
        await cb.async_log_success_event(
            {"standard_logging_object": {"id": "p2", "litellm_call_id": "c7", "status": "success"}}, None, 0, 0
        )
        # hooks never raise, even on nonsense
        await cb.async_post_call_failure_deployment_hook(None, None, None)
        await cb.async_post_call_failure_hook({}, ValueError("x"), None)

    asyncio.run(run())
    wait_for(lambda: len(ingest.events("/attempt")) == 2 and len(ingest.events("/litellm")) == 2, what="2 attempts, 2 outcomes")
    atts = ingest.events("/attempt")
    assert [(a["attempt"], a["kind"], a["model_group"], a["status"]) for a in atts] == [
        (1, "first", "chat-a", "failure"),
        (2, "fallback", "chat-b", "success"),
    ]
    a = atts[0]
    assert a["schema"] == "auditline.attempt.v1" and a["event_id"] == "%s/%d" % (em.spool.emitter, a["seq"])
    assert a["request_key"] == "c7" and a["start_time"].endswith("Z") and a["config_hash"].startswith("sha256:")
    outs = {o["status"]: o["auditline"]["attempts"] for o in ingest.events("/litellm")}
    assert outs == {"failure": 1, "success": 2}
    assert em.refused["hook_error"] == 1  # the nonsense failure hook, counted and logged
