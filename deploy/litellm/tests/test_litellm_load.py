"""The plugin inside the real LiteLLM 1.106.2 (the proxy venv of deploy/litellm/install.sh):
loaded the two ways LiteLLM loads custom callbacks, recognised as a pre-call hook, and its
provenance read from a real Router without leaking secrets."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.environ.get("AUDITLINE_LITELLM_VENV", "")
PY = os.path.join(VENV, "bin", "python")

if not os.path.exists(PY):
    if os.environ.get("AUDITLINE_REQUIRE_SERVERS") == "1":
        raise RuntimeError("LiteLLM venv %r missing: run deploy/litellm/install.sh" % VENV)
    pytest.skip("no LiteLLM venv (set AUDITLINE_LITELLM_VENV; deploy/litellm/install.sh)", allow_module_level=True)

PROBE = r"""
import json, sys
from litellm.proxy.types_utils.utils import get_instance_fn
from litellm.integrations.custom_logger import CustomLogger
h = get_instance_fn("auditline_litellm.callback.handler", config_file_path=sys.argv[1])
assert get_instance_fn("auditline_litellm.callback.handler", config_file_path=sys.argv[1]) is h, "one handler per process"
assert isinstance(h, CustomLogger)
cls = type(h)
assert "async_pre_call_hook" in vars(cls) and cls.async_pre_call_hook is not CustomLogger.async_pre_call_hook
from litellm import Router
import litellm.proxy.proxy_server as ps
ps.llm_router = Router(
    model_list=[{"model_name": "chat-a", "litellm_params": {"model": "openai/x", "api_key": "sk-secret-xyz",
                 "api_base": "http://u:pw@h.example/v1"}, "model_info": {"id": "a"}}],
    num_retries=2, fallbacks=[{"chat-a": ["chat-b"]}])
import auditline_litellm.provenance as p
doc = p.effective_config()
print(json.dumps({"module": sys.modules["auditline_litellm"].__file__, "doc": doc}))
"""


def probe(config_path, cwd, env_extra=None):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "AUDITLINE_PLUGIN_LAZY_START": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "AUDITLINE_SPOOL_DIR": "/nonexistent/never-used",
    }
    env.update(env_extra or {})
    out = subprocess.run([PY, "-c", PROBE, config_path], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mounted_next_to_config(tmp_path):
    got = probe(os.path.join(HERE, "config.yaml"), tmp_path)
    assert got["module"] == os.path.join(HERE, "auditline_litellm", "__init__.py")
    doc = got["doc"]
    s = json.dumps(doc)
    assert "sk-secret-xyz" not in s and "pw@" not in s
    assert doc["litellm_version"] == "1.106.2"
    assert doc["router_settings"]["num_retries"] == 2
    assert doc["router_settings"]["fallbacks"] == [{"chat-a": ["chat-b"]}]
    assert doc["model_list"][0]["litellm_params"]["api_key"] == "<redacted>"


def test_pip_installed_wheel(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), HERE],
        check=True,
        capture_output=True,
        timeout=180,
    )
    whl = next(wheels.glob("auditline_litellm-*.whl"))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(whl)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    elsewhere = tmp_path / "conf" / "config.yaml"  # no plugin folder next to this config
    elsewhere.parent.mkdir()
    elsewhere.write_text("model_list: []\n")
    got = probe(str(elsewhere), tmp_path, {"PYTHONPATH": str(site)})
    assert got["module"].startswith(str(site))
