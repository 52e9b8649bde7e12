import http.server
import threading
import time

import pytest

from auditline_litellm.transport import OK, REFUSED, RETRY, TOO_BIG, Transport, classify


@pytest.mark.parametrize(
    "status,kind",
    [
        (200, OK),
        (204, OK),
        (400, REFUSED),
        (401, REFUSED),
        (403, REFUSED),
        (404, REFUSED),
        (408, RETRY),
        (413, TOO_BIG),
        (429, RETRY),
        (500, RETRY),
        (503, RETRY),
    ],
)
def test_classify(status, kind):
    assert classify(status) == kind


@pytest.fixture
def server():
    state = {"status": 200, "delay": 0.0, "bodies": [], "headers": []}

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state["bodies"].append(body)
            state["headers"].append(dict(self.headers))
            time.sleep(state["delay"])
            out = b'{"accepted":1}'
            self.send_response(state["status"])
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.handle_error = lambda *a: None  # the timeout test hangs up on purpose
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    state["url"] = "http://127.0.0.1:%d/v1/litellm" % srv.server_address[1]
    yield state
    srv.shutdown()


def test_post_keeps_alive_and_sends_auth(server):
    t = Transport({"Authorization": "Bearer tok"}, timeout=5, user_agent="auditline-litellm/test")
    assert t.post(server["url"], b"[1]").kind == OK
    assert t.post(server["url"] + "/started", b"[2]").kind == OK
    assert server["bodies"] == [b"[1]", b"[2]"]
    h = server["headers"][0]
    assert h["Authorization"] == "Bearer tok" and h["Content-Type"] == "application/json"
    assert h["User-Agent"] == "auditline-litellm/test"


def test_statuses_and_timeouts(server):
    # Statuses through a generous timeout: on a loaded box a 0.3 s timeout
    # could turn the 503 or the 401 into a timeout.
    t = Transport({}, timeout=10, user_agent="x")
    server["status"] = 503
    a = t.post(server["url"], b"[]")
    assert (a.kind, a.status) == (RETRY, 503) and "accepted" in a.detail
    server["status"] = 401
    assert t.post(server["url"], b"[]").kind == REFUSED
    # The timeout: an answer 3 s late against a 0.3 s timeout.
    t = Transport({}, timeout=0.3, user_agent="x")
    server["status"], server["delay"] = 200, 3.0
    a = t.post(server["url"], b"[]")
    assert a.kind == RETRY and a.status == 0 and "timeout" in a.detail


def test_connection_refused():
    t = Transport({}, timeout=1, user_agent="x")
    a = t.post("http://127.0.0.1:1/v1/litellm", b"[]")
    assert a.kind == RETRY and a.status == 0
