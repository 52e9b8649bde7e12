"""Gateway provenance: the proxy's effective configuration, without secrets.

`effective_config()` reads the running proxy's live objects (the router, the
guardrail callbacks, a few litellm settings), not the YAML file, so it
describes what is in force, whatever changed it (a reload, an admin API
call). Secrets are never part of it: a member whose name looks like a
credential (key, secret, token, password, credential, ...) is replaced by
"<redacted>", and user:password@ is cut out of URLs. The document hashes to
`config_hash` (canonical.py), which every request event carries.

The document must not change between two calls while the configuration does
not: no timestamps, no object ids, no per-process values.
"""

from __future__ import annotations

import importlib.metadata
import re
from urllib.parse import urlsplit, urlunsplit

from . import __version__

SECRET = re.compile(r"(key|secret|token|passw|credential|auth|private|signature|session|cookie|database_url|dsn)", re.I)
SAFE_KEYS = {"api_key_env", "key_alias", "cache_key", "model_info"}  # names that match SECRET but hold no secret
REDACTED = "<redacted>"

ROUTER_SETTINGS = (
    "routing_strategy",
    "num_retries",
    "retry_after",
    "allowed_fails",
    "cooldown_time",
    "timeout",
    "stream_timeout",
    "max_fallbacks",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "model_group_alias",
    "enable_pre_call_checks",
    "retry_policy",
    "allowed_fails_policy",
    "default_max_parallel_requests",
)

LITELLM_SETTINGS = (
    "request_timeout",
    "num_retries",
    "drop_params",
    "turn_off_message_logging",
    "redact_messages_in_exceptions",
    "redact_user_api_key_info",
    "max_budget",
    "store_audit_logs",
)

GENERAL_SETTINGS = (
    "alerting",
    "alert_types",
    "alerting_threshold",
    "disable_spend_logs",
    "enforce_user_param",
    "max_parallel_requests",
    "global_max_parallel_requests",
    "allowed_routes",
    "public_routes",
)


def _strip_userinfo(s: str) -> str:
    if "@" not in s or "://" not in s:
        return s
    try:
        u = urlsplit(s)
    except ValueError:
        return s
    if u.username is None and u.password is None:
        return s
    host = u.hostname or ""
    if u.port:
        host += ":%d" % u.port
    return urlunsplit((u.scheme, host, u.path, u.query, u.fragment))


def sanitize(v, depth: int = 0):
    """A JSON-able copy of v with secrets redacted and floats made finite."""
    if depth > 12:
        return "<too deep>"
    if v is None or isinstance(v, bool) or isinstance(v, int):
        return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return repr(v)
        return v
    if isinstance(v, str):
        return _strip_userinfo(v)
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            k = str(k)
            if isinstance(x, (str, bytes)) and x and SECRET.search(k) and k not in SAFE_KEYS:
                out[k] = REDACTED  # a credential: its presence is configuration, its value is not
            else:
                out[k] = sanitize(x, depth + 1)
        return out
    if isinstance(v, (list, tuple, set, frozenset)):
        items = [sanitize(x, depth + 1) for x in v]
        if isinstance(v, (set, frozenset)):
            items.sort(key=repr)
        return items
    dump = getattr(v, "model_dump", None)  # pydantic
    if callable(dump):
        try:
            return sanitize(dump(), depth + 1)
        except Exception:
            pass
    if hasattr(v, "value") and isinstance(v.value, (str, int)):  # enums
        return v.value
    return "<%s>" % type(v).__name__


def _callback_name(cb) -> str:
    if isinstance(cb, str):
        return cb
    if callable(cb) and not hasattr(cb, "__dict__"):
        return getattr(cb, "__name__", type(cb).__name__)
    t = type(cb)
    return "%s.%s" % (t.__module__, t.__qualname__)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def effective_config():
    """The effective configuration of the running proxy, or None before the router exists."""
    import litellm

    try:
        from litellm.proxy import proxy_server as ps
    except Exception:  # not running inside the proxy (SDK use)
        ps = None
    router = getattr(ps, "llm_router", None) if ps is not None else None
    if ps is not None and router is None:
        return None
    doc = {
        "litellm_version": _version("litellm"),
        "plugin": "auditline-litellm " + __version__,
    }
    if router is not None:
        deployments = []
        for d in getattr(router, "model_list", None) or []:
            d = dict(d) if isinstance(d, dict) else sanitize(d)
            info = d.get("model_info") or {}
            deployments.append(
                {
                    "model_name": d.get("model_name"),
                    "litellm_params": sanitize(d.get("litellm_params") or {}),
                    "model_info": sanitize({k: v for k, v in dict(info).items() if k in ("id", "mode", "base_model", "tier")}),
                }
            )
        deployments.sort(key=lambda x: (str(x["model_name"]), str(x["model_info"].get("id", ""))))
        doc["model_list"] = deployments
        doc["router_settings"] = {k: sanitize(getattr(router, k)) for k in ROUTER_SETTINGS if hasattr(router, k)}
    guardrails = []
    seen = set()
    try:
        from litellm.integrations.custom_guardrail import CustomGuardrail
    except Exception:
        CustomGuardrail = ()  # noqa: N806
    for cb in list(getattr(litellm, "callbacks", []) or []):
        if CustomGuardrail and isinstance(cb, CustomGuardrail):
            name = getattr(cb, "guardrail_name", None) or _callback_name(cb)
            if name in seen:
                continue
            seen.add(name)
            guardrails.append(
                {
                    "name": name,
                    "mode": sanitize(getattr(cb, "event_hook", None)),
                    "default_on": bool(getattr(cb, "default_on", False)),
                    "implementation": _callback_name(cb),
                }
            )
    guardrails.sort(key=lambda g: g["name"])
    doc["guardrails"] = guardrails
    callbacks = sorted(
        {
            _callback_name(cb)
            for cb in (getattr(litellm, "callbacks", []) or [])
            if not (CustomGuardrail and isinstance(cb, CustomGuardrail))
        }
    )
    settings = {k: sanitize(getattr(litellm, k)) for k in LITELLM_SETTINGS if hasattr(litellm, k)}
    settings["callbacks"] = callbacks
    settings["cache"] = (
        type(litellm.cache.cache).__name__
        if getattr(litellm, "cache", None) is not None and hasattr(litellm.cache, "cache")
        else None
    )
    doc["litellm_settings"] = settings
    gs = getattr(ps, "general_settings", None) if ps is not None else None
    if isinstance(gs, dict):
        doc["general_settings"] = {k: sanitize(gs[k]) for k in GENERAL_SETTINGS if k in gs}
        doc["general_settings"]["master_key_set"] = bool(gs.get("master_key"))
    return doc
