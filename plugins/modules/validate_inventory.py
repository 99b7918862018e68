# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0
# The work is done by the action plugin of the same name; this file holds its documentation.

DOCUMENTATION = r"""
module: validate_inventory
short_description: Validate the inventory for teamllm.stack before any host is touched
description:
  - Runs once on the controller over every host of the play.
  - Reports unknown or misspelled variables (with the closest known names), values of the
    wrong type (string booleans included) or outside the spec's choices, numbers out of range
    (ports, rate limits, bursts, timeouts, counts, fractions), malformed sizes, times and
    addresses, missing or empty groups, a gateway without clients, unusable or shared API
    keys (empty, whitespace or a trailing newline, short, placeholder, under about 128 bits),
    download entries that are malformed or not recorded (C(TO_BE_FILLED)), a mirror URL over
    plain http or with credentials, C(llm_models) the placement would refuse, and keys given
    twice in one YAML mapping of an inventory file.
  - Keys, passwords and the mirror URL are never printed.
  - The known variables, their types and choices are those documented in the roles'
    C(meta/argument_specs.yml), checked with Ansible's C(ArgumentSpecValidator).
version_added: 0.1.0
author: teamllm.stack developers (!UNKNOWN)
options:
  required_groups:
    description: Inventory groups that must exist and hold at least one host.
    type: list
    elements: str
    default: []
  hosts:
    description: Hosts to check; defaults to every host of the play.
    type: list
    elements: str
extends_documentation_fragment:
  - teamllm.stack.attributes
  - teamllm.stack.attributes.action_group
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  action:
    description: Has an action plugin of the same name that does the work on the controller.
    support: full
"""

EXAMPLES = r"""
- name: Validate the inventory
  teamllm.stack.validate_inventory:
    required_groups: [gateway, llm_nodes]
  run_once: true
"""

RETURN = r"""
errors:
  description: One line per problem, naming the host, the variable and the fix.
  returned: failure
  type: list
  elements: str
checked_hosts:
  description: How many hosts were checked.
  returned: always
  type: int
"""
