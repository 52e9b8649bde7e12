"""Plugin settings, from the proxy's environment (LiteLLM hands custom
callbacks no configuration of their own). Every value is checked when the
proxy starts; a bad one stops the start with a message naming the variable.

  AUDITLINE_LITELLM_ENDPOINT   ingest's LiteLLM endpoint [http://127.0.0.1:8080/v1/litellm];
                               request_started goes to <endpoint>/started, gateway_config
                               to <endpoint>/config
  AUDITLINE_LITELLM_AUTH       the whole Authorization header value ("Bearer <ingest token>")
  AUDITLINE_SPOOL_DIR          spool directory [./auditline-spool]; one slot-<n>/ per worker
  AUDITLINE_SPOOL_MAX_BYTES    bound of one worker's spool [1073741824 = 1 GiB]
  AUDITLINE_SPOOL_SEGMENT_BYTES  segment size [8388608 = 8 MiB]
  AUDITLINE_SPOOL_FSYNC        interval | always | never [interval]
  AUDITLINE_SPOOL_FSYNC_INTERVAL seconds [1.0]
  AUDITLINE_SEND_TIMEOUT       seconds per POST [10]
  AUDITLINE_SEND_MAX_EVENTS    events per POST [500]
  AUDITLINE_SEND_MAX_BYTES     bytes per POST [4194304]
  AUDITLINE_SEND_LINGER        seconds to wait for more events before a small POST [0.05]
  AUDITLINE_RETRY_MAX          longest back-off after 5xx/timeouts, seconds [5]
  AUDITLINE_REFUSED_RETRY_MAX  longest back-off after a refused body (401, 403, 404 ...) [60]
  AUDITLINE_CONFIG_INTERVAL    seconds between checks of the effective configuration [30]
  AUDITLINE_PLUGIN_METRICS_PORT  serve Prometheus text on 127.0.0.1:<port + slot> [off]
  AUDITLINE_PLUGIN_METRICS_HOST  address for that listener [127.0.0.1]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from .spool import FSYNC_POLICIES


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    endpoint: str = "http://127.0.0.1:8080/v1/litellm"
    auth: str = ""
    spool_dir: str = "auditline-spool"
    max_bytes: int = 1 << 30
    segment_bytes: int = 8 << 20
    fsync: str = "interval"
    fsync_interval: float = 1.0
    timeout: float = 10.0
    max_events: int = 500
    max_post_bytes: int = 4 << 20
    linger: float = 0.05
    retry_max: float = 5.0
    refused_retry_max: float = 60.0
    config_interval: float = 30.0
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"

    @property
    def started_endpoint(self) -> str:
        return self.endpoint.rstrip("/") + "/started"

    @property
    def attempt_endpoint(self) -> str:
        return self.endpoint.rstrip("/") + "/attempt"

    @property
    def config_endpoint(self) -> str:
        return self.endpoint.rstrip("/") + "/config"

    def validate(self) -> Settings:
        u = urlsplit(self.endpoint)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise SettingsError("AUDITLINE_LITELLM_ENDPOINT=%r: want an http:// or https:// URL" % self.endpoint)
        if self.fsync not in FSYNC_POLICIES:
            raise SettingsError("AUDITLINE_SPOOL_FSYNC=%r: want one of %s" % (self.fsync, ", ".join(FSYNC_POLICIES)))
        if self.segment_bytes < 4096:
            raise SettingsError("AUDITLINE_SPOOL_SEGMENT_BYTES=%d: want at least 4096" % self.segment_bytes)
        if self.max_bytes < self.segment_bytes:
            raise SettingsError(
                "AUDITLINE_SPOOL_MAX_BYTES=%d: want at least AUDITLINE_SPOOL_SEGMENT_BYTES (%d)"
                % (self.max_bytes, self.segment_bytes)
            )
        for name, v in (
            ("AUDITLINE_SPOOL_FSYNC_INTERVAL", self.fsync_interval),
            ("AUDITLINE_SEND_TIMEOUT", self.timeout),
            ("AUDITLINE_RETRY_MAX", self.retry_max),
            ("AUDITLINE_REFUSED_RETRY_MAX", self.refused_retry_max),
            ("AUDITLINE_CONFIG_INTERVAL", self.config_interval),
        ):
            if not v > 0:
                raise SettingsError("%s=%r: want a number of seconds > 0" % (name, v))
        if self.linger < 0:
            raise SettingsError("AUDITLINE_SEND_LINGER=%r: want >= 0" % self.linger)
        if self.max_events < 1 or self.max_post_bytes < 1024:
            raise SettingsError("AUDITLINE_SEND_MAX_EVENTS >= 1 and AUDITLINE_SEND_MAX_BYTES >= 1024 required")
        if not 0 <= self.metrics_port < 65536:
            raise SettingsError("AUDITLINE_PLUGIN_METRICS_PORT=%d: want a port number" % self.metrics_port)
        return self


_FIELDS = {
    "AUDITLINE_LITELLM_ENDPOINT": ("endpoint", str),
    "AUDITLINE_LITELLM_AUTH": ("auth", str),
    "AUDITLINE_SPOOL_DIR": ("spool_dir", str),
    "AUDITLINE_SPOOL_MAX_BYTES": ("max_bytes", int),
    "AUDITLINE_SPOOL_SEGMENT_BYTES": ("segment_bytes", int),
    "AUDITLINE_SPOOL_FSYNC": ("fsync", str),
    "AUDITLINE_SPOOL_FSYNC_INTERVAL": ("fsync_interval", float),
    "AUDITLINE_SEND_TIMEOUT": ("timeout", float),
    "AUDITLINE_SEND_MAX_EVENTS": ("max_events", int),
    "AUDITLINE_SEND_MAX_BYTES": ("max_post_bytes", int),
    "AUDITLINE_SEND_LINGER": ("linger", float),
    "AUDITLINE_RETRY_MAX": ("retry_max", float),
    "AUDITLINE_REFUSED_RETRY_MAX": ("refused_retry_max", float),
    "AUDITLINE_CONFIG_INTERVAL": ("config_interval", float),
    "AUDITLINE_PLUGIN_METRICS_PORT": ("metrics_port", int),
    "AUDITLINE_PLUGIN_METRICS_HOST": ("metrics_host", str),
}


def from_env(env=None) -> Settings:
    env = os.environ if env is None else env
    kw = {}
    for var, (name, typ) in _FIELDS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            kw[name] = typ(raw.strip()) if typ is not str else raw
        except ValueError:
            raise SettingsError("%s=%r: want %s" % (var, raw, "an integer" if typ is int else "a number")) from None
    return Settings(**kw).validate()
