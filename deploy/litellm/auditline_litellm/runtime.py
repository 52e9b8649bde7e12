"""The CustomLogger subclass LiteLLM calls, and the one handler per process.

Hooks (all async, all on the proxy's event loop; none of them ever raises
into LiteLLM, because a raising pre-call hook would reject the request):

  async_pre_call_hook      request_started marker, spooled before the upstream call
  async_log_success_event  the StandardLoggingPayload, + "auditline": {emitter, seq, config_hash, config_seq}
  async_log_failure_event  the same for failures

Route capture (attempts.py, issue 21): the router's per-deployment hooks
(async_pre_call_deployment_hook, async_post_call_success_deployment_hook,
async_post_call_failure_deployment_hook) and the proxy's
async_post_call_failure_hook feed an AttemptTracker that spools one attempt
event per upstream call; each outcome payload says how many came before it.

LiteLLM's admin audit events (`audit_log_callbacks`) are not handled: LiteLLM
1.106.2 dispatches them only with an enterprise licence (premium_user) and
for objects kept in its database; see docs/litellm.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import threading

from .attempts import AttemptTracker
from .emitter import Emitter
from .settings import from_env

try:
    from litellm.integrations.custom_logger import CustomLogger
except ImportError:  # unit tests without LiteLLM
    CustomLogger = object  # type: ignore[assignment,misc]

log = logging.getLogger("auditline_litellm")
if not log.handlers:
    _h = logging.StreamHandler(sys.stderr)
    _h.setFormatter(logging.Formatter("%(asctime)s - auditline_litellm:%(levelname)s: %(message)s", "%H:%M:%S"))
    log.addHandler(_h)
    log.setLevel(logging.INFO)
    log.propagate = False

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def key_hash(api_key) -> str:
    """LiteLLM's user_api_key_hash: the SHA-256 of a virtual key (LiteLLM already
    hands the hash), or a literal such as litellm_proxy_master_key. A value that
    looks like a raw key (sk-...) is hashed here, never sent."""
    if not api_key or not isinstance(api_key, str):
        return ""
    if _HEX64.match(api_key) or api_key == "litellm_proxy_master_key":
        return api_key
    return hashlib.sha256(api_key.encode()).hexdigest()


def _dumps():
    try:
        from litellm.litellm_core_utils.safe_json_dumps import safe_dumps

        return lambda obj: safe_dumps(obj).encode("utf-8")
    except ImportError:
        from .emitter import _default_dumps

        return _default_dumps


def _config_source():
    from .provenance import effective_config

    return effective_config()


class AuditlineCallback(CustomLogger):
    """Durable, sequenced delivery of LiteLLM's request events to auditline."""

    def __init__(self, emitter: Emitter):
        if CustomLogger is not object:
            super().__init__()
        self.emitter = emitter
        self.attempts = AttemptTracker(self._spool_attempt)

    def _spool_attempt(self, doc: dict) -> int:
        return self.emitter.attempt(doc) if self._ready() else 0

    def _ready(self) -> bool:
        try:
            self.emitter.start()  # no-op after the first call in this process
            return True
        except Exception as e:
            log.exception("auditline: cannot start the emitter (spool %s): %s", self.emitter.s.spool_dir, e)
            return False

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        try:
            if self._ready():
                self.emitter.started(
                    call_id=str(data.get("litellm_call_id") or ""),
                    key_hash=key_hash(getattr(user_api_key_dict, "api_key", None)),
                    requested_model=str(data.get("model") or ""),
                    call_type=str(call_type or ""),
                    stream=bool(data.get("stream")),
                    route=str(getattr(user_api_key_dict, "request_route", "") or ""),
                )
        except Exception as e:
            self.emitter.hook_failed("request_started", e)
        return None

    def _outcome(self, kwargs, status: str) -> None:
        if not self._ready():
            return
        payload = kwargs.get("standard_logging_object")
        if not isinstance(payload, dict):
            # LiteLLM could not build its payload: keep what identifies the request
            call_id = str(kwargs.get("litellm_call_id") or "")
            payload = {
                "id": call_id,
                "litellm_call_id": call_id,
                "status": status,
                "auditline_note": "LiteLLM built no standard_logging_object for this event",
            }
        call_id = str(payload.get("litellm_call_id") or kwargs.get("litellm_call_id") or "")
        self.emitter.outcome(payload, attempts=self.attempts.outcome(call_id, payload))

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        try:
            self._outcome(kwargs, "success")
        except Exception as e:
            self.emitter.hook_failed("success event", e)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        try:
            self._outcome(kwargs, "failure")
        except Exception as e:
            self.emitter.hook_failed("failure event", e)

    # ---- the route: one attempt event per upstream call (attempts.py) ----

    async def async_pre_call_deployment_hook(self, kwargs, call_type):
        try:
            self.attempts.opened(kwargs)
        except Exception as e:
            self.emitter.hook_failed("attempt start", e)
        return None  # the request is never modified

    async def async_post_call_success_deployment_hook(self, request_data, response, call_type):
        try:
            self.attempts.succeeded(request_data)
        except Exception as e:
            self.emitter.hook_failed("attempt success", e)
        return None

    async def async_post_call_failure_deployment_hook(self, request_data, exception, call_type, fallback_depth=None):
        try:
            self.attempts.failed(request_data, exception, fallback_depth)
        except Exception as e:
            self.emitter.hook_failed("attempt failure", e)

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict, traceback_str=None):
        try:
            self.attempts.finished(str(request_data.get("litellm_call_id") or ""), original_exception)
        except Exception as e:
            self.emitter.hook_failed("request failure", e)
        return None


_lock = threading.Lock()
_handler = None


def get_handler() -> AuditlineCallback:
    """The process's handler, made on first use from the environment (settings.py)."""
    global _handler
    with _lock:
        if _handler is None:
            emitter = Emitter(from_env(), config_source=_config_source, dumps=_dumps())
            _handler = AuditlineCallback(emitter)
            if os.environ.get("AUDITLINE_PLUGIN_LAZY_START", "") != "1":
                _handler._ready()
        return _handler
