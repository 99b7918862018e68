# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters rendering a model placement: the Markdown report, the SVG picture, the text table
and the capacity and cost figures. The logic lives in module_utils/_plan_report.py,
_plan_svg.py and _plan_costs.py; each filter is documented in the .yml file of its name beside
this one."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import (
    _plan_costs,
    _plan_report,
    _plan_svg,
)


def _wrap(func):
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise AnsibleFilterError(f"{func.__name__}: {exc}") from exc

    wrapper.__name__ = func.__name__
    return wrapper


def placement_report(plan, costs=None, svg_name="placement.svg", date=None, gpus=None):
    return _plan_report.markdown(plan, _plan_costs.figures(plan, costs, gpus), svg_name, date)


def placement_svg(plan, date=None):
    return _plan_svg.svg(plan, date=date)


def placement_table(plan):
    return _plan_report.table(plan)


def placement_costs(plan, costs=None, gpus=None):
    return _plan_costs.figures(plan, costs, gpus)


class FilterModule:
    def filters(self):
        return {
            "placement_report": _wrap(placement_report),
            "placement_svg": _wrap(placement_svg),
            "placement_table": _wrap(placement_table),
            "placement_costs": _wrap(placement_costs),
        }
