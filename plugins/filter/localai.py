# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Template helper of the localai role; the logic lives in module_utils/_engines/localai.py.
The filter is documented in localai_model_definition.yml beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils._engines import localai as _localai


def localai_model_definition(instance, model_file, threads=0):
    try:
        return _localai.model_definition(instance, model_file, threads)
    except (KeyError, ValueError) as exc:
        raise AnsibleFilterError(f"localai instance {instance.get('name', '?')}: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"localai_model_definition": localai_model_definition}
