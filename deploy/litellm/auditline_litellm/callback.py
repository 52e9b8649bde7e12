"""The LiteLLM side: a CustomLogger whose hooks hand events to the emitter.

In the proxy's config.yaml (works both when the package is pip-installed and
when the auditline_litellm/ folder sits next to config.yaml)::

    litellm_settings:
      callbacks: ["auditline_litellm.callback.handler"]

LiteLLM loads a custom callback either with importlib (installed package) or
by file path relative to the config file (get_instance_fn ->
spec_from_file_location). In the second case this file runs as a module of
a package Python never imported; `_bootstrap` registers the package from
this folder first so the imports below resolve to the files next to it.
The handler is one object per process however often LiteLLM loads the file.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _bootstrap() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    pkg = sys.modules.get("auditline_litellm")
    if pkg is not None and os.path.dirname(os.path.abspath(getattr(pkg, "__file__", "") or "")) == here:
        return
    spec = importlib.util.spec_from_file_location(
        "auditline_litellm", os.path.join(here, "__init__.py"), submodule_search_locations=[here]
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["auditline_litellm"] = mod
    spec.loader.exec_module(mod)


_bootstrap()

from auditline_litellm.runtime import get_handler  # noqa: E402

handler = get_handler()
