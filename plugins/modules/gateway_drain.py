#!/usr/bin/python
# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0

DOCUMENTATION = r"""
module: gateway_drain
short_description: Take backends out of the gateway's rotation, or put them back
description:
  - Marks backends (C(address:port) of the gateway's upstreams) C(down) in a configuration set
    derived from the live one, or switches back to the set they were drained from. Used by
    C(playbooks/upgrade.yml) to take one engine host out of every gateway's rotation while it
    is updated.
  - "The gateway role's mechanism is kept: the drained set is a directory of its own beside the
    live one, its files copied from the live set (their references to their directory
    rewritten) with the backends marked C(down) in its C(nginx.conf), checked whole with
    C(nginx -t), marked checked, and made live by one atomic switch of the link. A set that
    fails C(nginx -t) is removed and the live one keeps serving. The live files are never
    edited."
  - "It records the set it was derived from: putting every backend back switches to that set,
    so a later run of the gateway role changes nothing. Drains of several hosts add up."
  - nginx must then be reloaded (its old workers finish the requests they are serving).
  - Refuses a drain that would leave an upstream without a backend.
version_added: 0.1.0
author: teamllm.stack developers (!UNKNOWN)
options:
  backends:
    description: The backends, as they appear in the gateway's routes (C(address:port)).
    type: list
    elements: str
    required: true
  state:
    description: C(drained) takes the backends out of rotation, C(active) puts them back.
    type: str
    choices: [drained, active]
    default: drained
  link:
    description: The link to the live configuration set (the gateway role's).
    type: path
    default: /etc/nginx/teamllm
  marker:
    description: The file a checked set holds (the gateway role's).
    type: str
    default: .checked
extends_documentation_fragment:
  - teamllm.stack.attributes
  - teamllm.stack.attributes.action_group
attributes:
  check_mode:
    support: full
  diff_mode:
    description: Returns the backends drained before and after in diff mode.
    support: full
"""

EXAMPLES = r"""
- name: Take this engine host's backends out of the gateway's rotation
  teamllm.stack.gateway_drain:
    backends: [172.30.79.12:8100]
    state: drained
  delegate_to: gateway1
  register: drained

- name: Reload nginx (its old workers finish their requests)
  ansible.builtin.systemd_service:
    name: nginx.service
    state: reloaded
  delegate_to: gateway1
  when: drained is changed
"""

RETURN = r"""
drained:
  description: The backends drained at this gateway after the change.
  type: list
  elements: str
  returned: always
set:
  description: The configuration set that is (or in check mode would be) live.
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.teamllm.stack.plugins.module_utils._upgrade import UpgradeError, switch_drain


def main():
    module = AnsibleModule(
        argument_spec={
            "backends": {"type": "list", "elements": "str", "required": True},
            "state": {"type": "str", "choices": ["drained", "active"], "default": "drained"},
            "link": {"type": "path", "default": "/etc/nginx/teamllm"},
            "marker": {"type": "str", "default": ".checked"},
        },
        supports_check_mode=True,
    )
    params = module.params

    def nginx_test(conf):
        rc, _out, err = module.run_command(["/usr/sbin/nginx", "-t", "-q", "-c", conf])
        return rc, err

    try:
        result = switch_drain(params["link"], params["backends"], params["state"], params["marker"],
                              nginx_test, check_mode=module.check_mode)
    except UpgradeError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=result["changed"], drained=result["after"], set=result["set"],
                     diff={"before": {"drained": result["before"]},
                           "after": {"drained": result["after"]}})


if __name__ == "__main__":
    main()
