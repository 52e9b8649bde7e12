from auditline_litellm.provenance import REDACTED, sanitize


def test_secrets_are_redacted_but_structure_kept():
    params = {
        "model": "openai/gpt-a",
        "api_base": "https://user:hunter2@proxy.example.com:8443/v1",
        "api_key": "sk-real-secret",
        "aws_secret_access_key": "abc",
        "vertex_credentials": "{...}",
        "input_cost_per_token": 2e-06,
        "timeout": float("inf"),
        "extra": {"client_secret": "s", "region": "eu"},
        "fallbacks": [{"token-model": ["chat-b"]}],
        "empty_key": "",
    }
    got = sanitize(params)
    assert got["api_key"] == REDACTED and got["aws_secret_access_key"] == REDACTED
    assert got["vertex_credentials"] == REDACTED and got["extra"] == {"client_secret": REDACTED, "region": "eu"}
    assert got["api_base"] == "https://proxy.example.com:8443/v1"
    assert got["model"] == "openai/gpt-a" and got["input_cost_per_token"] == 2e-06
    assert got["timeout"] == "inf"
    assert got["fallbacks"] == [{"token-model": ["chat-b"]}]  # a model name is not a secret
    assert got["empty_key"] == ""
    assert "hunter2" not in repr(got) and "sk-real" not in repr(got)


def test_odd_values_become_names():
    class Thing:
        pass

    assert sanitize({"a": Thing(), "s": {3, 1}}) == {"a": "<Thing>", "s": [1, 3]}
