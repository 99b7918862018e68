#!/usr/bin/python
# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0

DOCUMENTATION = r"""
module: ollama_model
short_description: A model on an Ollama server, present or absent, through Ollama's HTTP API
description:
  - Makes one model present or absent on an Ollama server through its HTTP API
    (C(/api/show), C(/api/pull), C(/api/blobs), C(/api/create), C(/api/delete)).
  - "A present model comes from one source: the registry (pulled by O(name)), another model
    (O(from), with Modelfile data on top), or an offline copy: an Ollama manifest (O(manifest))
    and its blobs (O(blobs_dir), files C(sha256-<hex>)). Every blob of an offline copy is checked
    against its digest before anything is sent to the server; a corrupt copy fails and the
    server's models directory is not touched."
  - Modelfile data (O(system), O(template), O(parameters)) is compared with what C(/api/show)
    reports; the model is created again only when something differs, so repeated runs change
    nothing.
version_added: 0.1.0
author: teamllm.stack developers (!UNKNOWN)
options:
  name:
    description: The model's name (C(name) or C(name:tag); the tag defaults to C(latest)).
    type: str
    required: true
  state:
    description: Whether the model is present or absent.
    type: str
    choices: [present, absent]
    default: present
  from:
    description: Create the model from this model (which must be present) with the Modelfile data given.
    type: str
  manifest:
    description: Path on the node of an Ollama manifest (schema 2 JSON) to import offline.
    type: path
  blobs_dir:
    description: Directory of the manifest's blobs, named C(sha256-<hex>); default the manifest's directory.
    type: path
  system:
    description: The system prompt (Modelfile C(SYSTEM)).
    type: str
  template:
    description: The prompt template (Modelfile C(TEMPLATE)), Go template syntax.
    type: str
  parameters:
    description:
      - "Modelfile C(PARAMETER)s, e.g. C({num_ctx: 4096, temperature: 0.7, stop: [\"</s>\"]}); a
        list value repeats the parameter. They update the base model's parameters."
    type: dict
  url:
    description: The server's base URL.
    type: str
    default: http://127.0.0.1:11434
  timeout:
    description: Seconds to wait for one API call (pulls and imports of large models take long).
    type: int
    default: 3600
notes:
  - With neither O(from) nor O(manifest), the model is pulled from the registry; Modelfile data
    then needs a second model created O(from) it.
  - In check mode an unreachable server counts as one without the model (it may be installed
    by the same run), so check mode on a fresh node reports a change instead of failing.
extends_documentation_fragment:
  - teamllm.stack.attributes
  - teamllm.stack.attributes.action_group
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Pull a model from the registry
  teamllm.stack.ollama_model:
    name: llama3.1:8b-instruct-q8_0

- name: Import a model from the offline mirror's copy (blobs checked against their digests)
  teamllm.stack.ollama_model:
    name: teamllm-tiny:q8_0
    manifest: /var/cache/teamllm/downloads/ollama/ollama_teamllm_tiny/q8_0
    blobs_dir: /var/cache/teamllm/downloads/ollama/ollama_teamllm_tiny

- name: A custom model with its own system prompt and parameters
  teamllm.stack.ollama_model:
    name: support-bot
    from: llama3.1:8b-instruct-q8_0
    system: You answer questions about our product, briefly.
    parameters:
      num_ctx: 8192
      temperature: 0.3

- name: Remove a model
  teamllm.stack.ollama_model:
    name: support-bot
    state: absent
"""

RETURN = r"""
name:
  description: The model's name as the server lists it (C(name:tag)).
  type: str
  returned: always
actions:
  description: What was (or in check mode would be) done.
  type: list
  elements: str
  returned: always
pull:
  description: The status lines of a pull.
  type: list
  elements: str
  returned: when a model was pulled
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.teamllm.stack.plugins.module_utils import _ollama_api as api


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "from": {"type": "str"},
            "manifest": {"type": "path"},
            "blobs_dir": {"type": "path"},
            "system": {"type": "str"},
            "template": {"type": "str"},
            "parameters": {"type": "dict"},
            "url": {"type": "str", "default": api.DEFAULT_URL},
            "timeout": {"type": "int", "default": 3600},
        },
        mutually_exclusive=[["from", "manifest"]],
        required_by={"blobs_dir": "manifest"},
        supports_check_mode=True,
    )
    spec = {k: module.params[k] for k in
            ("name", "state", "from", "manifest", "blobs_dir", "system", "template", "parameters")}
    try:
        result = api.ensure(api.Client(module.params["url"], module.params["timeout"]), spec,
                            check_mode=module.check_mode)
    except api.OllamaError as exc:
        module.fail_json(msg=str(exc), name=module.params["name"])
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
