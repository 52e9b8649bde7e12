"""Canonical JSON (RFC 8785, JCS) for the gateway configuration hash.

config_hash = "sha256:" + hex(SHA-256(canonical(config))), where config is the
`config` object of a gateway_config event. Any RFC 8785 implementation
recomputes it from the event (auditline's Go side uses gowebpki/jcs), so an
auditor can check that a record's config hash names exactly that document.

Differences from RFC 8785 that cannot occur in the documents we hash: keys
are sorted by code point, not UTF-16 code unit (the same order unless a key
holds characters outside the Basic Multilingual Plane); NaN and ±Infinity are
written as strings by the caller before hashing (JSON has no such numbers).
"""

from __future__ import annotations

import hashlib
import json
import math


def _number(f: float) -> str:
    """ECMAScript Number.prototype.toString, as RFC 8785 §3.2.2.3 requires."""
    if f == 0:
        return "0"
    if math.isnan(f) or math.isinf(f):
        raise ValueError("NaN and Infinity have no JSON form")
    sign = "-" if f < 0 else ""
    mant, _, exp = repr(abs(f)).partition("e")
    ip, _, fp = mant.partition(".")
    digits = ip + fp
    stripped = digits.lstrip("0")
    n = len(ip) + (int(exp) if exp else 0) - (len(digits) - len(stripped))
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    m = digits[0] + ("." + digits[1:] if k > 1 else "")
    return sign + m + "e" + ("+" if e > 0 else "-") + str(abs(e))


def dumps(v) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted((str(k), x) for k, x in v.items())
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dumps(x) for k, x in items) + "}"
    raise TypeError("not JSON: %s" % type(v).__name__)


def config_hash(doc) -> str:
    return "sha256:" + hashlib.sha256(dumps(doc).encode("utf-8")).hexdigest()
