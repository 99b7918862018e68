from __future__ import annotations

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._inventory import (
    api_key_problem,
    validate_clients,
    validate_groups,
    validate_host,
)

GOOD = "Zq4v8XkP2mW9rT6yB1nC5hJ7dF3gL0sA-_xE"
OTHER = "pL9mN2bV7cX4zQ8wE1rT6yU3iO5aS0dF-_gH"
KNOWN = {
    "gateway_https_port": {"type": "int"},
    "gateway_routes": {"type": "dict"},
    "llama_cpp_instances": {"type": "list"},
    "llm_artifact_source": {"type": "str", "choices": ["upstream", "mirror", "controller"]},
    "docker_users": {"type": "list"},
    "nvidia_driver_force": {"type": "bool"},
    "llm_engine_allow_from": {"type": "list"},
    "llm_engine_allow_wide": {"type": "bool"},
}
PREFIXES = ("docker_", "gateway_", "llama_cpp_", "llm_", "nvidia_driver_")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        (None, "empty"),
        ("short", "5 bytes"),
        ("a" * 31, "31 bytes"),
        ("changeme" * 5, "placeholder"),
        ("x" * 40, "placeholder"),
        ("ab" * 20, "too few"),
        ("with space" + "k" * 30, "characters"),
    ],
)
def test_unusable_keys(key, reason):
    assert reason in api_key_problem(key)


def test_good_key():
    assert api_key_problem(GOOD) == ""


def test_shared_key_names_both_clients_and_never_the_key():
    errors = validate_clients([{"name": "alice", "key": GOOD}, {"name": "bob", "key": GOOD}])
    assert len(errors) == 1
    assert "alice" in errors[0] and "bob" in errors[0]
    assert GOOD not in errors[0]


def test_clients_other_problems():
    errors = validate_clients([{"name": "alice", "key": GOOD}, {"name": "alice", "key": OTHER, "colour": 1}])
    assert any("used twice" in e for e in errors)
    assert any("unknown keys colour" in e for e in errors)
    assert validate_clients([]) and validate_clients("nope")


def test_clients_burst_is_a_whole_number():
    assert validate_clients([{"name": "alice", "key": GOOD, "rate_limit": "5r/s", "burst": 10}]) == []
    for bad in (-1, "10", 2.5, True):
        errors = validate_clients([{"name": "alice", "key": GOOD, "burst": bad}])
        assert errors == ["llm_api_clients[0] (alice): burst must be a whole number of 0 or more "
                          "(requests let through at once)"], bad


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("gatway_https_port", 443, "unknown variable gatway_https_port: did you mean gateway_https_port?"),
        ("gateway_colour", "red", "unknown variable gateway_colour"),
        ("gateway_https_port", "443x", "must be an integer"),
        ("nvidia_driver_force", "yes", "write a YAML boolean"),
        ("docker_users", "alice", "must be a list"),
        ("llm_artifact_source", "ftp", "choose one of upstream, mirror, controller"),
    ],
)
def test_host_problems_name_host_and_variable(var, value, expected):
    errors = validate_host("node7", {var: value}, KNOWN, PREFIXES)
    assert len(errors) == 1
    assert errors[0].startswith("host node7: ")
    assert expected in errors[0]


def test_valid_host_and_unrelated_variables_pass():
    host_vars = {
        "gateway_https_port": "8443",
        "gateway_routes": {"m": ["127.0.0.1:1"]},
        "llama_cpp_instances": [],
        "nvidia_driver_force": False,
        "ansible_host": "10.0.0.1",
        "_private": 1,
        "site_owner": "ops",
        "llm_artifact_source": "{{ lookup('env', 'X') }}",
    }
    assert validate_host("n", host_vars, KNOWN, PREFIXES) == []


def test_unknown_engine():
    errors = validate_host("n", {"llm_models": [{"name": "m", "engine": "olama"}]}, KNOWN, PREFIXES)
    assert any("llm_models[0].engine is 'olama'" in e for e in errors)


def test_groups():
    assert validate_groups({"gateway": ["a"], "llm_nodes": []}, ["gateway", "llm_nodes", "monitoring"]) == [
        "inventory group llm_nodes is empty: add at least one host to it",
        "inventory group monitoring is missing: add at least one host to it",
    ]


@pytest.mark.parametrize("allow", [["0.0.0.0/0"], ["::/0"], ["10.0.0.5", "8.0.0.0/7"]])
def test_world_wide_engine_allow_list_needs_its_opt_in(allow):
    errors = validate_host("node1", {"llm_engine_allow_from": allow}, KNOWN, PREFIXES)
    assert len(errors) == 1
    assert errors[0].startswith("host node1: llm_engine_allow_from admits ")
    assert "set llm_engine_allow_wide: true" in errors[0]
    opted_in = {"llm_engine_allow_from": allow, "llm_engine_allow_wide": True}
    assert validate_host("node1", opted_in, KNOWN, PREFIXES) == []


def test_private_engine_allow_list_passes():
    host_vars = {"llm_engine_allow_from": ["10.0.0.0/8", "192.168.1.7", "fd00::/8"]}
    assert validate_host("node1", host_vars, KNOWN, PREFIXES) == []
