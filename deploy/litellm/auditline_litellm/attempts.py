"""The real route of a request (auditline issue 21): one attempt event per upstream call.

LiteLLM's own logging payloads carry at most a request's first failed call and
its final outcome: 1.106 logs one failure payload per request, behind a
de-duplication gate, so a request that fails on six deployments sends one
payload, and the retries and fallback hops between a first failure and the
final success are not in any payload. The router's per-deployment hooks do
see every call (LiteLLM 1.106.2, litellm/utils.py, the @client wrapper around
each litellm.acompletion the router makes):

  async_pre_call_deployment_hook(kwargs, call_type)
        before each call, after the router chose a deployment (also before a
        cache lookup, so a cache hit opens a call that never reaches upstream)
  async_post_call_failure_deployment_hook(request_data, exception, call_type, fallback_depth)
        "once per failed deployment attempt - attempt 1, every retry, and every
        fallback chain step" (its docstring)
  async_post_call_success_deployment_hook(request_data, response, call_type)
        after a non-streamed success; a streamed call has none, it ends with the
        request's success log event (async_log_success_event), or a failure

Every call of a request carries its litellm_call_id (the proxy sets it once and
the router passes it on to every retry and fallback), and the router's metadata
names the call's model group, deployment (model_info.id), model and api_base.

The tracker opens a call at the pre-call hook and closes it at the success or
failure hook, then spools one `auditline.attempt.v1` event
(schemas/litellm-attempt.v1.json) with the next number of the request, its
kind (first / retry in the same model group / fallback to another group, with
the group it came from), the outcome (status, exception class, HTTP status,
timeout) and the start and end times. A call opened but never closed by a
hook (a cache hit, a cancelled request) is closed by the request's outcome: a
cache hit is dropped (it never reached upstream), anything else is reported
from the outcome payload. Each outcome payload then announces how many attempt
events came before it (`"auditline": {..., "attempts": n}`), so enrich can tell
a complete route from one with a lost event.

Hooks run on the proxy's event loop, one at a time; the lock is for the sender
thread's reads and for safety. State is per call id, dropped when the request's
outcome is spooled, and swept after `ttl` seconds (a request whose outcome
never comes) so memory stays bounded.
"""

from __future__ import annotations

import threading
import time

SCHEMA = "auditline.attempt.v1"
MAX_MESSAGE = 2000


def _metadata(kwargs) -> dict:
    """The router's metadata of a call: `metadata` for chat and embeddings,
    `litellm_metadata` for the call types that keep the user's metadata apart."""
    for name in ("metadata", "litellm_metadata"):
        m = kwargs.get(name) if hasattr(kwargs, "get") else None
        if isinstance(m, dict) and (m.get("model_group") or m.get("model_info") or m.get("deployment")):
            return m
    m = kwargs.get("metadata") if hasattr(kwargs, "get") else None
    return m if isinstance(m, dict) else {}


def _str(v) -> str:
    return v if isinstance(v, str) else ("" if v is None else str(v))


def describe(kwargs) -> dict:
    """Which deployment a call went to, from the hook's kwargs."""
    md = _metadata(kwargs)
    info = md.get("model_info") if isinstance(md.get("model_info"), dict) else {}
    model = _str(md.get("deployment") or kwargs.get("model"))
    provider = _str(kwargs.get("custom_llm_provider"))
    if not provider and "/" in model:
        provider = model.split("/", 1)[0]
    group = _str(md.get("model_group") or kwargs.get("model_group"))
    depth = kwargs.get("fallback_depth")
    return {
        "model_group": group,
        "deployment_id": _str(info.get("id") or kwargs.get("model_id")),
        "model": model,
        "provider": provider,
        "api_base": _str(md.get("api_base") or kwargs.get("api_base")),
        "fallback_depth": depth if isinstance(depth, int) and depth >= 0 else 0,
        "stream": kwargs.get("stream") is True,
    }


def classify(exc) -> dict:
    """The outcome fields of a failed call: exception class, HTTP status, timeout."""
    cls = type(exc).__name__
    status = getattr(exc, "status_code", None)
    timeout = cls in ("Timeout", "TimeoutError", "ReadTimeout", "ConnectTimeout", "APITimeoutError")
    if not timeout:
        try:
            import litellm

            timeout = isinstance(exc, litellm.Timeout)
        except Exception:
            pass
    if timeout:
        cls = "Timeout" if cls in ("TimeoutError", "ReadTimeout", "ConnectTimeout", "APITimeoutError") else cls
        status = 408
    code = str(status) if isinstance(status, int) and 100 <= status <= 599 else ""
    try:
        msg = str(exc)
    except Exception:
        msg = cls
    return {
        "status": "failure",
        "error_class": cls,
        "error_code": code,
        "error_message": msg[:MAX_MESSAGE],
        "timeout": timeout,
    }


class _Route:
    __slots__ = ("open", "n", "last_group", "touched")

    def __init__(self, now):
        self.open = []  # [(token, start, description)], oldest first
        self.n = 0  # attempt events spooled for the request
        self.last_group = None
        self.touched = now


class AttemptTracker:
    """Turns the router's deployment hooks into numbered attempt events.

    emit(doc) spools one attempt event (the emitter adds event_id, emitter, seq
    and the configuration hash) and returns its sequence number, 0 if it could
    not be spooled."""

    def __init__(self, emit, clock=time.time, ttl: float = 3600.0, max_requests: int = 100_000):
        self.emit = emit
        self.clock = clock
        self.ttl = ttl
        self.max_requests = max_requests
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self._last_sweep = 0.0

    # ---- hooks ------------------------------------------------------------

    def opened(self, kwargs) -> None:
        """A call is about to go to a deployment (async_pre_call_deployment_hook)."""
        call_id = _str(kwargs.get("litellm_call_id"))
        if not call_id:
            return
        now = self.clock()
        with self._lock:
            self._sweep(now)
            r = self._routes.get(call_id)
            if r is None:
                if len(self._routes) >= self.max_requests:
                    return  # bounded: the outcome then announces fewer attempts, and enrich says partial
                r = self._routes[call_id] = _Route(now)
            token = id(kwargs.get("litellm_logging_obj"))
            # The same logging object opening again: the earlier call ended
            # without a hook (it was answered from the cache): forget it.
            r.open = [o for o in r.open if o[0] != token]
            r.open.append((token, now, describe(kwargs)))
            r.touched = now

    def failed(self, request_data, exc, fallback_depth=None) -> None:
        """A call failed (async_post_call_failure_deployment_hook)."""
        outcome = classify(exc)
        if isinstance(fallback_depth, int) and fallback_depth >= 0:
            outcome["fallback_depth"] = fallback_depth
        self._close(request_data, outcome)

    def succeeded(self, request_data) -> None:
        """A non-streamed call answered (async_post_call_success_deployment_hook)."""
        self._close(request_data, {"status": "success"})

    def outcome(self, call_id: str, payload) -> int:
        """The request's outcome payload is about to be spooled: return how many
        attempt events the request has. A success ends the request: a call still
        open is a stream (no success hook for streams), reported now, or a cache
        hit (never reached upstream), dropped. A failure payload ends nothing
        (LiteLLM logs a request's first failure while the router goes on with
        retries and fallbacks): see finished()."""
        if not call_id:
            return 0
        success = isinstance(payload, dict) and payload.get("status") == "success"
        cache_hit = isinstance(payload, dict) and payload.get("cache_hit") is True
        with self._lock:
            r = self._routes.get(call_id)
            if r is None:
                return 0
            pending = r.open if success else []
            if success:
                r.open = []
        if pending and not cache_hit:
            _, start, desc = pending[-1]
            self._emit(call_id, start, desc, {"status": "success"})
        with self._lock:
            r = self._routes.get(call_id)
            n = r.n if r is not None else 0
            if success:
                self._routes.pop(call_id, None)
        return n

    def finished(self, call_id: str, exc=None) -> None:
        """The request failed for good (the proxy's post-call failure hook): a
        call still open failed outside the deployment hooks (a stream cut
        mid-way) and is reported with the request's exception; the state goes."""
        with self._lock:
            r = self._routes.get(call_id)
            pending = r.open if r is not None else []
            if r is not None:
                r.open = []
        if pending and exc is not None:
            _, start, desc = pending[-1]
            self._emit(call_id, start, desc, classify(exc))
        with self._lock:
            self._routes.pop(call_id, None)

    def pending(self) -> int:
        with self._lock:
            return len(self._routes)

    # ---- internals --------------------------------------------------------

    def _close(self, request_data, outcome: dict) -> None:
        call_id = _str(request_data.get("litellm_call_id"))
        if not call_id:
            return
        token = id(request_data.get("litellm_logging_obj"))
        with self._lock:
            r = self._routes.get(call_id)
            hit = None
            if r is not None and r.open:
                for i, o in enumerate(r.open):
                    if o[0] == token:
                        hit = r.open.pop(i)
                        break
                else:
                    hit = r.open.pop()
        if hit is not None:
            _, start, desc = hit
        else:
            # No open call (a hook missed, or state swept): still report it.
            start, desc = self.clock(), describe(request_data)
        self._emit(call_id, start, desc, outcome)

    def _emit(self, call_id: str, start: float, desc: dict, outcome: dict) -> None:
        end = self.clock()
        with self._lock:
            r = self._routes.get(call_id)
            if r is None:
                r = self._routes[call_id] = _Route(end)
            r.n += 1
            n = r.n
            group = desc["model_group"]
            if r.last_group is None:
                kind, frm = "first", ""
            elif group == r.last_group:
                kind, frm = "retry", ""
            else:
                kind, frm = "fallback", r.last_group
            r.last_group = group
            r.touched = end
        doc = {
            "request_key": call_id,
            "attempt": n,
            "kind": kind,
            "model_group": group,
            "fallback_from": frm,
            "fallback_depth": desc["fallback_depth"],
            "deployment_id": desc["deployment_id"],
            "model": desc["model"],
            "provider": desc["provider"],
            "api_base": desc["api_base"],
            "stream": desc["stream"],
            "start_time": start,
            "end_time": max(start, end),
            "status": outcome["status"],
            "timeout": bool(outcome.get("timeout")),
        }
        if "fallback_depth" in outcome:
            doc["fallback_depth"] = outcome["fallback_depth"]
        if outcome["status"] == "failure":
            doc["error_class"] = outcome.get("error_class", "")
            doc["error_code"] = outcome.get("error_code", "")
            doc["error_message"] = outcome.get("error_message", "")
        self.emit(doc)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        old = [k for k, r in self._routes.items() if now - r.touched > self.ttl]
        for k in old:
            del self._routes[k]
