#!/usr/bin/env python3
"""Capture HTTP server: stands in for auditline's ingest while we record what LiteLLM sends.

Every request (any method, any path) is written verbatim to
    <out>/<case>/<seq>-<path with / as _>.body      the exact body bytes
    <out>/<case>/<seq>-<path with / as _>.headers   request line + headers as received
    <out>/<case>/<seq>-<path with / as _>.meta.json receive time, status answered
and answered with the configured status (200 by default, empty JSON body).

Control (not recorded):
    POST /_control {"case": "plain"}      files go to <out>/plain/ from now on
    POST /_control {"status": 503}        answer every later request with 503
    POST /_control {"delay": 2.5}         sleep before answering (seconds)
    GET  /_control                        current state and the count of requests per case

Standard library only; listens on 127.0.0.1 only.
"""

import argparse
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"case": "default", "status": 200, "delay": 0.0}
COUNTS = {}
LOCK = threading.Lock()
SEQ = [0]
OUT = "."
CONNECTIONS = set()  # open client sockets, so a test can drop them all (drop_connections)


def drop_connections():
    """Reset every open client connection (as a crashed server would)."""
    import socket

    with LOCK:
        conns = list(CONNECTIONS)
    for c in conns:
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            CONNECTIONS.add(self.connection)

    def finish(self):
        with LOCK:
            CONNECTIONS.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, fmt, *args):  # one line per request on stderr
        print("%s %s" % (time.strftime("%H:%M:%S"), fmt % args), flush=True)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(n) if n else b""

    def _answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _control(self):
        if self.command == "POST":
            req = json.loads(self._read_body() or b"{}")
            with LOCK:
                for k in ("case", "status", "delay"):
                    if k in req:
                        STATE[k] = req[k]
        with LOCK:
            self._answer(200, {"state": dict(STATE), "counts": dict(COUNTS)})

    def _record(self):
        received = time.time()
        body = self._read_body()
        with LOCK:
            SEQ[0] += 1
            seq = SEQ[0]
            case, status, delay = STATE["case"], int(STATE["status"]), float(STATE["delay"])
            COUNTS[case] = COUNTS.get(case, 0) + 1
        d = os.path.join(OUT, case)
        os.makedirs(d, exist_ok=True)
        name = "%05d-%s" % (seq, re.sub(r"[^A-Za-z0-9_.-]", "_", self.path.strip("/")) or "root")
        with open(os.path.join(d, name + ".body"), "wb") as f:
            f.write(body)
        with open(os.path.join(d, name + ".headers"), "w") as f:
            f.write("%s %s %s\n" % (self.command, self.path, self.request_version))
            for k, v in self.headers.items():
                f.write("%s: %s\n" % (k, v))
        with open(os.path.join(d, name + ".meta.json"), "w") as f:
            json.dump({"seq": seq, "received": received, "answered_status": status, "bytes": len(body)}, f)
        if delay:
            time.sleep(delay)
        self._answer(status, {} if status < 300 else {"error": "capture server answering %d" % status})

    def do_GET(self):
        if self.path.startswith("/_control"):
            return self._control()
        return self._record()

    def do_POST(self):
        if self.path.startswith("/_control"):
            return self._control()
        return self._record()

    do_PUT = do_POST


def main():
    global OUT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=18089)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    OUT = args.out
    os.makedirs(OUT, exist_ok=True)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("capture server on 127.0.0.1:%d writing to %s" % (args.port, OUT), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
