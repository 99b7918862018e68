# Copyright: teamllm.stack contributors
# Apache License 2.0
"""fill_defaults: give every dict of a list the keys it leaves out, from a dict of defaults."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fill_defaults
short_description: Complete each dict of a list with default values
description:
  - Returns a new list in which every item is C(defaults) updated with the item's own keys.
options:
  _input:
    description: A list of dicts.
    type: list
    elements: dict
    required: true
  defaults:
    description: The values for keys an item leaves out.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Instances with defaults
  ansible.builtin.debug:
    msg: "{{ [{'name': 'a'}] | teamllm.stack.fill_defaults({'port': 8080}) }}"
"""

RETURN = r"""
_value:
  description: The completed list.
  type: list
"""

from ansible.errors import AnsibleFilterError


def fill_defaults(items, defaults):
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise AnsibleFilterError("fill_defaults expects a list of dicts")
    return [{**defaults, **item} for item in items]


class FilterModule:
    def filters(self):
        return {"fill_defaults": fill_defaults}
