"""numpy is imported guarded: without it the collection's plugins still load (Ansible and
ansible-test's import test load every file), and a placement refuses, naming the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[4] / ".collections"

WITHOUT_NUMPY = """
import sys
sys.modules["numpy"] = None  # import numpy now raises ImportError
from ansible_collections.teamllm.stack.plugins.module_utils import _placement
from ansible_collections.teamllm.stack.plugins.module_utils._placement import greedy, milp, relax
try:
    _placement.plan([{"name": "m"}], {"a": {"gpus": []}})
except _placement.PlacementInputError as exc:
    print(exc)
"""


def test_without_numpy_the_plugins_load_and_the_placement_names_it():
    out = subprocess.run([sys.executable, "-c", WITHOUT_NUMPY], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(COLLECTIONS)})
    assert "needs the Python package numpy on the controller" in out.stdout


def test_with_numpy_nothing_is_missing():
    from ansible_collections.teamllm.stack.plugins.module_utils._placement import _numpy

    assert _numpy.np is not None and _numpy.MISSING == ""
