# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Template helpers of the ollama role; the logic lives in module_utils/_engines/ollama.py.
Each filter is documented in the .yml file of its name beside this one."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils._engines import EngineError
from ansible_collections.teamllm.stack.plugins.module_utils._engines import ollama as _ollama


def _wrap(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except EngineError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def ollama_server(instances):
    return _ollama.server_settings(instances)


def ollama_model_plan(instances, downloads, source="mirror", custom=None, host="this host"):
    return _wrap(_ollama.model_plan, instances, downloads, source=source, custom=custom, host=host)


def ollama_stale_models(present, plan):
    return _ollama.stale_models(present, plan)


def ollama_blob_downloads(manifest, entry_name, entry):
    return _wrap(_ollama.blob_downloads, manifest, entry_name, entry)


def ollama_default_source(artifact_source):
    return _ollama.default_source(artifact_source)


class FilterModule:
    def filters(self):
        return {
            "ollama_server": ollama_server,
            "ollama_model_plan": ollama_model_plan,
            "ollama_stale_models": ollama_stale_models,
            "ollama_blob_downloads": ollama_blob_downloads,
            "ollama_default_source": ollama_default_source,
        }
