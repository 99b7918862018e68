# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters rendering a model placement; the logic lives in module_utils/_plan_report.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: placement_report
short_description: A model placement as a Markdown report with a cost comparison
description:
  - Takes the result of M(teamllm.stack.model_placement) and returns a Markdown report with a
    summary, a table per host and GPU, the instances, the gateway routes, the models that did
    not fit and a cost comparison with a hosted API.
  - The same plugin file provides C(placement_svg) (plan -> SVG picture of VRAM per GPU and
    model), C(placement_table) (plan -> lines of a text table per host and GPU) and
    C(placement_costs) (plan, assumptions -> the cost figures as a dict).
options:
  _input:
    description: The registered result of M(teamllm.stack.model_placement).
    type: dict
    required: true
  costs:
    description:
      - Cost assumptions overriding the defaults (C(currency), C(gpu_watts), C(idle_gpu_watts),
        C(host_watts), C(hours_per_month), C(electricity_per_kwh), C(hardware_per_gpu),
        C(hardware_per_host), C(amortisation_months), C(tokens_per_second_per_instance),
        C(busy_fraction), C(api_price_per_million_tokens)).
    type: dict
  svg_name:
    description: File name of the SVG the report links to.
    type: str
    default: placement.svg
  date:
    description: Date printed in the report.
    type: str
"""

EXAMPLES = r"""
- name: Write the report
  ansible.builtin.copy:
    content: "{{ plan | teamllm.stack.placement_report(costs={'electricity_per_kwh': 0.25}) }}"
    dest: "{{ plan_report_dir }}/placement.md"
    mode: "0644"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The Markdown report.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _plan_report


def _wrap(func):
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise AnsibleFilterError(f"{func.__name__}: {exc}") from exc

    wrapper.__name__ = func.__name__
    return wrapper


def placement_report(plan, costs=None, svg_name="placement.svg", date=None):
    return _plan_report.markdown(plan, _plan_report.costs(plan, costs), svg_name, date)


def placement_svg(plan):
    return _plan_report.svg(plan)


def placement_table(plan):
    return _plan_report.table(plan)


def placement_costs(plan, costs=None):
    return _plan_report.costs(plan, costs)


class FilterModule:
    def filters(self):
        return {
            "placement_report": _wrap(placement_report),
            "placement_svg": _wrap(placement_svg),
            "placement_table": _wrap(placement_table),
            "placement_costs": _wrap(placement_costs),
        }
