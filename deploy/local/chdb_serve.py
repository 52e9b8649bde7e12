"""Serve ClickHouse 26.x from PyPI's chdb-core on loopback (deploy/local/start.sh clickhouse26).

chdb-core is clickhouse-local as a Python extension. It has no server entry
point, but one query can start its TCP and HTTP listeners; they serve while
that query runs and close when it returns:

    SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP;
    SELECT max(sleepEachRow(1)) FROM numbers(N) SETTINGS max_block_size=1, max_threads=1

The listeners read listen_host, tcp_port and http_port from config.xml in the
working directory (start.sh writes it). A second serving query in the same
process fails ("EventNotifier is initialized twice"), and two queries cannot
overlap, so a lifetime is renewed by a new process.

Two modes:

    chdb_serve.py supervise DATA LIFETIME   # what start.sh runs (its pid is the pid file's)
    chdb_serve.py serve DATA LIFETIME       # one server process, started by the supervisor

The supervisor starts a server for LIFETIME seconds and starts the next one
as soon as it ends (renewal). At a renewal the listeners close: open
connections are dropped, a query in flight fails with a connection error, and
for about a second (the new process loading the library) connections are
refused. clickhouse-go drops dead pooled connections and dials again; the
store retries a failed INSERT (with the same insert_deduplication_token).
Data is in DATA and survives renewals and restarts.

The lifetime bounds what an orphan can do: a server process dies with its
supervisor (PR_SET_PDEATHSIG), and in any case when its query ends. A server
that exits with an error within CRASH_WINDOW seconds of starting CRASH_LIMIT
times in a row makes the supervisor give up (exit 1), so start.sh's health
check reports the log instead of looping.

SIGTERM or SIGINT to the supervisor stops the server and exits 0.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

SERVE = (
    "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; "
    "SELECT max(sleepEachRow(1)) FROM numbers({n}) SETTINGS max_block_size=1, max_threads=1"
)
CRASH_WINDOW = 10
CRASH_LIMIT = 3


def log(msg):
    print(time.strftime("%Y-%m-%d %H:%M:%S"), "chdb_serve[%d]:" % os.getpid(), msg, flush=True)


def serve(data, lifetime):
    # Die with the supervisor: never an orphan holding the ports.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() == 1:
        sys.exit("supervisor already gone")
    from chdb import _chdb  # noqa: imported late: loading the library takes ~1 s

    log("serving for %ds from %s" % (lifetime, data))
    try:
        _chdb.query(SERVE.format(n=lifetime), "CSV", path=data)
    except Exception as e:  # the query's error text is the useful part
        log("server query failed: %s" % e)
        sys.exit(1)
    log("lifetime over")


def supervise(data, lifetime):
    state = {"stopping": False, "child": None}

    def stop(signum, _frame):
        state["stopping"] = True
        c = state["child"]
        if c is not None and c.poll() is None:
            c.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    crashes = 0
    while not state["stopping"]:
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "serve", data, str(lifetime)])
        state["child"] = child
        if state["stopping"]:  # a signal arrived while starting it
            child.terminate()
        try:
            rc = child.wait(timeout=None)
        except KeyboardInterrupt:
            rc = child.wait()
        if state["stopping"]:
            break
        if rc == 0:
            crashes = 0
            log("renewing the server (a new process; open connections were dropped)")
            continue
        if time.monotonic() - started < CRASH_WINDOW:
            crashes += 1
            if crashes >= CRASH_LIMIT:
                log("server exited with %d %d times within %ds of starting; giving up" % (rc, crashes, CRASH_WINDOW))
                sys.exit(1)
        else:
            crashes = 0
        log("server exited with %d; restarting" % rc)
        time.sleep(1)
    c = state["child"]
    if c is not None:
        try:
            c.wait(timeout=20)
        except subprocess.TimeoutExpired:
            c.kill()
            c.wait()
    log("stopped")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("serve", "supervise"):
        sys.exit("usage: chdb_serve.py supervise|serve DATA_DIR LIFETIME_SECONDS")
    mode, data, lifetime = sys.argv[1], os.path.abspath(sys.argv[2]), int(sys.argv[3])
    if lifetime < 1:
        sys.exit("LIFETIME_SECONDS must be positive")
    os.makedirs(data, exist_ok=True)
    (serve if mode == "serve" else supervise)(data, lifetime)


if __name__ == "__main__":
    main()
