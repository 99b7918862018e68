# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Options shared by the filters that map one host's placement onto an engine role's
instances (engine_instances, ollama_instances, vllm_instances, localai_instances)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  _input:
    description: One host's placement, C({address, instances, devices}).
    type: dict
    required: true
  models:
    description: C(llm_models).
    type: list
    elements: dict
    required: true
  host:
    description: Host name used in messages.
    type: str
"""

    DOWNLOADS = r"""
options:
  downloads:
    description: C(llm_downloads).
    type: dict
    required: true
"""
