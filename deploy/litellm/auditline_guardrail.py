"""A tiny LiteLLM custom guardrail for local tests: it needs no network.

Config (deploy/litellm/config.yaml):

    guardrails:
      - guardrail_name: auditline-marker
        litellm_params:
          guardrail: auditline_guardrail.MarkerGuardrail   # this file, next to config.yaml
          mode: pre_call
          default_on: true
          marker: AUDITLINE-BLOCK                          # optional, this is the default

A request whose messages contain the marker word is rejected before any model
call (HTTP 400); every other request passes. The decorator records the verdict
in the request's standard logging payload (guardrail_information), so the
generic_api callback shows both outcomes.
"""

from typing import Optional

from fastapi import HTTPException

from litellm.integrations.custom_guardrail import (
    CustomGuardrail,
    log_guardrail_information,
)

DEFAULT_MARKER = "AUDITLINE-BLOCK"


def _texts(messages):
    for m in messages or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield part["text"]


class MarkerGuardrail(CustomGuardrail):
    def __init__(self, marker: Optional[str] = None, **kwargs):
        self.marker = marker or DEFAULT_MARKER
        super().__init__(**kwargs)

    @log_guardrail_information
    async def async_pre_call_hook(self, user_api_key_dict, cache, data: dict, call_type):
        for text in _texts(data.get("messages")):
            if self.marker in text:
                raise HTTPException(
                    status_code=400,
                    detail={
                        "error": "Violated guardrail policy",
                        "guardrail": self.guardrail_name,
                        "marker": self.marker,
                    },
                )
        return data
