import json
import threading
import time

import pytest

from auditline_litellm.emitter import Emitter
from auditline_litellm.settings import Settings
from auditline_litellm.transport import Answer, classify


class FakeIngest:
    """A Transport double: records every POST; answers with the next scripted
    status (200 once the script is used up). Thread-safe."""

    def __init__(self):
        self.posts = []  # (url, [decoded events])
        self.script = []
        self.lock = threading.Lock()
        self.default = 200

    def post(self, url, body):
        with self.lock:
            status = self.script.pop(0) if self.script else self.default
            if status == 0:
                return Answer("retry", 0, "timeout after 1.0s (fake)")
            ans = Answer(classify(status), status, '{"reason":"fake %d"}' % status)
            events = json.loads(body)
            if ans.kind == "ok":
                self.posts.append((url, events))
            return ans

    def close(self):
        pass

    def events(self, url_suffix=None):
        with self.lock:
            return [e for url, evs in self.posts for e in evs if url_suffix is None or url.endswith(url_suffix)]


def wait_for(cond, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture
def ingest():
    return FakeIngest()


@pytest.fixture
def make_emitter(tmp_path, ingest):
    made = []
    config = {"doc": {"litellm_version": "1.106.2", "router_settings": {"num_retries": 2}}}

    def make(spool_dir=None, transport=None, **kw):
        base = dict(
            spool_dir=str(spool_dir or tmp_path / "spool"),
            linger=0,
            retry_max=0.05,
            refused_retry_max=0.05,
            config_interval=0.05,
            fsync_interval=0.05,
        )
        base.update(kw)
        e = Emitter(Settings(**base).validate(), config_source=lambda: config["doc"], transport=transport or ingest)
        made.append(e)
        return e

    make.config = config
    yield make
    for e in made:
        e.stop(timeout=2)
