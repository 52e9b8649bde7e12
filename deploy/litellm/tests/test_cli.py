import json

from conftest import FakeIngest

from auditline_litellm.__main__ import main


def test_status_reads_without_locking(make_emitter, tmp_path, capsys):
    ing = FakeIngest()
    ing.default = 503
    em = make_emitter(transport=ing)
    em.start()
    em.outcome({"id": "x", "status": "success"})
    assert main(["status", str(tmp_path / "spool")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["emitter"] == em.spool.emitter and out[0]["held_by_live_process"] is True
    assert out[0]["waiting"].get("outcome") == 1
    assert main(["status", str(tmp_path / "nope")]) == 1
    assert main([]) == 2
