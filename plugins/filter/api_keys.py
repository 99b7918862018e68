# Copyright: teamllm.stack contributors
# Apache License 2.0
"""api_key_problem: why a string cannot be an API key ("" when it can)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: api_key_problem
short_description: Tell why a string cannot be an API key
description:
  - Returns an empty string for a usable key, otherwise the reason (empty, shorter than 32
    bytes, bad characters, a placeholder, too few distinct characters). Never echoes the key.
options:
  _input:
    description: The key.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse unusable keys
  ansible.builtin.assert:
    that: llm_api_clients | map(attribute='key') | map('teamllm.stack.api_key_problem') | select | list | length == 0
"""

RETURN = r"""
_value:
  description: The reason, or an empty string.
  type: str
"""

from ansible_collections.teamllm.stack.plugins.module_utils._inventory import api_key_problem


class FilterModule:
    def filters(self):
        return {"api_key_problem": api_key_problem}
