# Copyright: teamllm.stack contributors
# Apache License 2.0
"""api_key_problem: why a string cannot be an API key ("" when it can). Each filter is
documented in the .yml file of its name beside this one."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils._api_keys import api_key_problem


class FilterModule:
    def filters(self):
        return {"api_key_problem": api_key_problem}
