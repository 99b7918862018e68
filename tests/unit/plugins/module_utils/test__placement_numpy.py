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


WITHOUT_GGUF = """
import sys
sys.modules["gguf"] = None  # import gguf now raises ImportError
sys.modules["gguf.constants"] = None
from ansible_collections.teamllm.stack.plugins.module_utils import _placement, _catalog, _estimator, _gguf_reader
for call in (lambda: _placement.plan([{"name": "m"}], {"a": {"gpus": []}}),
             lambda: _gguf_reader.read_gguf("model.gguf"),
             lambda: _gguf_reader.type_nbytes("Q8_0", 32)):
    try:
        call()
    except (_placement.PlacementInputError, _gguf_reader.GGUFError) as exc:
        print(exc)
"""


def test_without_gguf_the_plugins_load_and_the_placement_and_reader_name_it():
    out = subprocess.run([sys.executable, "-c", WITHOUT_GGUF], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(COLLECTIONS)})
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    assert all("needs the Python package gguf on the controller" in line for line in lines)
