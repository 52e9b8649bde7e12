"""HTTP to auditline ingest: one keep-alive connection, answers classified.

Classification (what the sender does next):

  OK       2xx: every event of the body is durable in Kafka; acknowledge.
  RETRY    5xx, 408, 429, a timeout or a transport error: back off
           (exponential, capped) and send the same events again.
  REFUSED  any other 4xx (a wrong token: 401/403; a wrong endpoint: 404):
           the body is refused *whole*, which no event of ours can cause
           on its own, so it is an operator's problem: keep everything,
           back off longer, log loudly every time, never drop.
  TOO_BIG  413: send fewer events per body (down to one); a single event
           ingest still refuses stays in the spool as REFUSED.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

OK, RETRY, REFUSED, TOO_BIG = "ok", "retry", "refused", "too_big"


class Answer:
    def __init__(self, kind: str, status: int, detail: str):
        self.kind = kind
        self.status = status  # 0: no HTTP answer
        self.detail = detail

    def __repr__(self):
        return "Answer(%s, %d, %r)" % (self.kind, self.status, self.detail)


def classify(status: int) -> str:
    if 200 <= status < 300:
        return OK
    if status == 413:
        return TOO_BIG
    if status in (408, 429) or status >= 500:
        return RETRY
    return REFUSED


class Transport:
    def __init__(self, headers: dict, timeout: float, user_agent: str):
        self.headers = dict(headers)
        self.headers.setdefault("Content-Type", "application/json")
        self.headers["User-Agent"] = user_agent
        self.timeout = timeout
        self._conn = None
        self._key = None

    def _connection(self, url: str):
        u = urlsplit(url)
        key = (u.scheme, u.hostname, u.port)
        if self._conn is None or self._key != key:
            self.close()
            if u.scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    u.hostname, u.port or 443, timeout=self.timeout, context=ssl.create_default_context()
                )
            elif u.scheme == "http":
                self._conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=self.timeout)
            else:
                raise ValueError("endpoint %r: want an http:// or https:// URL" % url)
            self._key = key
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        return self._conn, path

    def post(self, url: str, body: bytes) -> Answer:
        conn, path = self._connection(url)
        try:
            conn.request("POST", path, body=body, headers=self.headers)
            resp = conn.getresponse()
            data = resp.read(4096)
            if resp.will_close:
                self.close()
        except (socket.timeout, TimeoutError) as e:
            self.close()
            return Answer(RETRY, 0, "timeout after %.1fs (%s)" % (self.timeout, e))
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return Answer(RETRY, 0, "%s: %s" % (type(e).__name__, e))
        detail = data.decode("utf-8", "replace").strip()
        return Answer(classify(resp.status), resp.status, detail[:500])

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None
        self._key = None
