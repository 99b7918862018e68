"""The plan-report filters: thin wrappers; bad input becomes an AnsibleFilterError; each
filter has its own documentation file."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.filter import plan_report
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils import (
    plan_report_fixtures as F,
)

FILTERS = plan_report.FilterModule().filters()


def test_filters_render_the_plan():
    plan = F.team_plan()
    text = FILTERS["placement_report"](plan, costs={"currency": "EUR"}, gpus=F.team_facts(),
                                       date="2026-12-01")
    assert "Planned 2026-12-01." in text and " EUR" in text
    assert FILTERS["placement_svg"](plan, date="2026-12-01").startswith("<svg")
    assert FILTERS["placement_table"](plan)[0].startswith("host")
    fig = FILTERS["placement_costs"](plan, {"years": 5})
    assert fig["tco"]["years"] == 5 and fig["capacity"]["covered"]


def test_bad_inputs_fail_as_filter_errors():
    with pytest.raises(AnsibleFilterError, match="placement_costs: unknown cost inputs"):
        FILTERS["placement_costs"](F.team_plan(), {"amortisation_months": 36})


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_each_filter_has_its_own_documentation(name):
    doc = yaml.safe_load((pathlib.Path(plan_report.__file__).parent / f"{name}.yml").read_text())
    assert doc["DOCUMENTATION"]["name"] == name
    assert "EXAMPLES" in doc and "_value" in doc["RETURN"]
