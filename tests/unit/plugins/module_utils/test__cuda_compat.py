# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Unit tests for plugins/module_utils/_cuda_compat.py and the cuda role's driver table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[4]
_spec = importlib.util.spec_from_file_location(
    "_cuda_compat", ROOT / "plugins" / "module_utils" / "_cuda_compat.py"
)
cc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cc)

VARS = yaml.safe_load((ROOT / "roles" / "cuda" / "vars" / "main.yml").read_text())
TABLE = VARS["_cuda_min_driver"]
MINOR = VARS["_cuda_min_driver_minor_compat"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("535.261.03", (535, 261, 3)), ("570.26", (570, 26)), (" 12 ", (12,)), (580, (580,))],
)
def test_parse_version(text, expected):
    assert cc.parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "535.x", "1..2", None, "-1"])
def test_parse_version_refuses_garbage(text):
    with pytest.raises(cc.CudaCompatError):
        cc.parse_version(text)


@pytest.mark.parametrize(("cuda", "key"), [("12.8", "12.8"), ("12.8.1", "12.8"), ("11.8.89", "11.8")])
def test_cuda_key(cuda, key):
    assert cc.cuda_key(cuda) == key


def test_cuda_key_needs_minor():
    with pytest.raises(cc.CudaCompatError, match="major.minor"):
        cc.cuda_key("12")


@pytest.mark.parametrize(
    ("cuda", "driver"),
    [("12.2", "535.54.03"), ("12.8.1", "570.26"), ("13.0", "580.65.06"), ("11.8", "520.61.05")],
)
def test_min_driver(cuda, driver):
    assert cc.min_driver(cuda, TABLE) == driver


def test_min_driver_unknown_cuda_names_the_known_ones():
    with pytest.raises(cc.CudaCompatError, match=r"CUDA 12\.7 is not in .*12\.6, 12\.8"):
        cc.min_driver("12.7", TABLE)


@pytest.mark.parametrize(
    ("driver", "cuda", "ok"),
    [
        # Debian 12's driver and toolkit
        ("535.261.03", "11.8", True),
        ("535.261.03", "12.2", True),
        ("535.261.03", "12.4", False),
        # Debian 13's driver and toolkit
        ("550.163.01", "12.4", True),
        ("550.163.01", "12.8", False),
        # numeric, not lexical, comparison
        ("570.26", "12.8", True),
        ("570.9", "12.8", False),
        ("1000.0", "13.0", True),
        ("580.65.05", "13.0", False),
    ],
)
def test_driver_supports(driver, cuda, ok):
    assert cc.driver_supports(driver, cuda, TABLE) is ok


def test_minor_version_compatibility_lowers_the_floor():
    assert cc.driver_supports("535.261.03", "12.8", TABLE) is False
    assert cc.driver_supports("535.261.03", "12.8", TABLE, MINOR) is True
    assert cc.min_driver("12.8", TABLE, MINOR) == "525.60.13"
    # but never across a major
    assert cc.driver_supports("535.261.03", "13.0", TABLE, MINOR) is False


@pytest.mark.parametrize(
    ("driver", "cuda"),
    [("535.261.03", "12.2"), ("550.163.01", "12.4"), ("580.95.05", "13.0"), ("400.1", "")],
)
def test_max_cuda(driver, cuda):
    assert cc.max_cuda(driver, TABLE) == cuda


def test_package_suffix():
    assert cc.package_suffix("12.8.1") == "12-8"


@pytest.mark.parametrize("table", [{}, None, [("12.8", "570.26")]])
def test_bad_table(table):
    with pytest.raises(cc.CudaCompatError):
        cc.min_driver("12.8", table)


def test_table_is_sorted_and_monotonic():
    keys = sorted(TABLE, key=cc.parse_version)
    assert list(TABLE) == keys, "keep _cuda_min_driver in CUDA version order"
    drivers = [cc.parse_version(TABLE[k]) for k in keys]
    assert drivers == sorted(drivers), "a later CUDA never needs an older driver"
