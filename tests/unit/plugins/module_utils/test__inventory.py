"""Inventory validation (SECURITY row 1): unknown variables, types and choices through Ansible's
ArgumentSpecValidator, ranges, clients, downloads, the mirror URL, models, groups, duplicate
keys; every message names the host, the variable and the fix, and quotes no secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.teamllm.stack.plugins.action.validate_inventory import known_variables
from ansible_collections.teamllm.stack.plugins.module_utils._inventory import (
    ADDRESSES,
    PATTERNS,
    RANGES,
    host_problems,
    merge_hosts,
    validate_groups,
    validate_host,
    value_problem,
)

GOOD = "Zq4v8XkP2mW9rT6yB1nC5hJ7dF3gL0sA-_xE"
OTHER = "pL9mN2bV7cX4zQ8wE1rT6yU3iO5aS0dF-_gH"
KNOWN, PREFIXES = known_variables()
SHA = "a" * 64
MODEL = {"name": "teamllm-tiny", "engine": "llama_cpp", "quantizations": ["Q8_0"], "download": "tiny"}
COLLECTION = {"tiny": {"path": "models/tiny.gguf", "url": "", "sha256": SHA},
              "ollama": {"path": "ollama/o.tar.zst", "url": "https://h/o", "sha256": "TO_BE_FILLED"}}


def problems(host_vars, groups=("llm_nodes",)):
    return host_problems(host_vars, KNOWN, PREFIXES, groups=groups,
                         collection_downloads=COLLECTION, all_hosts=("node1", "node2"))


def test_argument_spec_validator_is_lenient():
    """What Ansible's validator accepts that the roles' templates would misuse (measured with
    ansible-core 2.19; _inventory's strict table refuses each). If Ansible tightens one, this
    test says so and the table can shrink."""
    accepted = [("bool", "yes"), ("bool", "no"), ("bool", 1), ("int", True), ("str", ["a"]),
                ("str", {"a": 1}), ("str", True), ("list", "a,b"), ("dict", "k=v")]
    for kind, value in accepted:
        result = ArgumentSpecValidator({"v": {"type": kind}}).validate({"v": value})
        assert not result.error_messages, (kind, value)
        assert value_problem("v", value, {"type": kind}), (kind, value)


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("gatway_https_port", 443, "unknown variable gatway_https_port: did you mean gateway_https_port"),
        ("gateway_colour", "red", "unknown variable gateway_colour"),
        ("gateway_https_port", "443x", "gateway_https_port must be an integer, not '443x'"),
        ("gateway_https_port", 4.5, "gateway_https_port must be an integer"),
        ("gateway_https_port", True, "gateway_https_port must be an integer, not a boolean"),
        ("nvidia_driver_force", "yes", "nvidia_driver_force is the string 'yes'; write a YAML boolean"),
        ("nvidia_driver_force", 1, "nvidia_driver_force must be true or false, not int"),
        ("docker_users", "alice,bob", "docker_users must be a list, not str"),
        ("docker_users", ["alice", {"name": "bob"}], "docker_users[1] must be a string, not dict"),
        ("docker_daemon_options", "debug=true", "docker_daemon_options must be a dict, not str"),
        ("gateway_server_name", ["gw"], "gateway_server_name must be a string, not list"),
        ("llm_artifact_source", "ftp", "llm_artifact_source is 'ftp'; choose one of upstream, mirror, controller"),
        ("llm_gpu_reserve_gib", "lots", "llm_gpu_reserve_gib must be a number"),
        # ranges (argument specs have none)
        ("gateway_https_port", 0, "gateway_https_port is 0; use from 1 to 65535 (a TCP port)"),
        ("gateway_https_port", 70000, "gateway_https_port is 70000; use from 1 to 65535"),
        ("gateway_webui_port", "99999", "gateway_webui_port is '99999'; use from 1 to 65535"),
        ("llm_engine_port_base", 80, "llm_engine_port_base is 80; use from 1024 to 65000"),
        ("gateway_rate_limit_per_key", 0, "gateway_rate_limit_per_key is 0; use 1 or more"),
        ("gateway_rate_limit_burst", 0, "gateway_rate_limit_burst is 0; use 1 or more (requests let through at once; nginx refuses 0)"),
        ("gateway_unauthorized_burst", -3, "gateway_unauthorized_burst is -3; use 1 or more"),
        ("gateway_acme_renew_days", 120, "gateway_acme_renew_days is 120; use from 1 to 89"),
        ("vllm_health_timeout", 0, "vllm_health_timeout is 0; use 1 or more (seconds)"),
        ("llm_cpu_ram_gib", -1, "llm_cpu_ram_gib is -1; use 0 or more"),
        ("vllm_instance_defaults", {"gpu_memory_utilization": 1.5}, "vllm_instance_defaults.gpu_memory_utilization is 1.5; use above 0 and at most 1"),
        ("vllm_instance_defaults", {"gpu_memory_utilization": 0}, "vllm_instance_defaults.gpu_memory_utilization is 0; use above 0"),
        ("vllm_instances", [{"name": "a", "port": 8100}, {"name": "b", "port": 0}], "vllm_instances[1].port is 0; use from 1 to 65535"),
        ("llama_cpp_instance_defaults", {"context": 0}, "llama_cpp_instance_defaults.context is 0; use 1 or more (tokens)"),
        ("ollama_server", {"port": 65536}, "ollama_server.port is 65536"),
        # sizes, times, addresses
        ("gateway_client_max_body_size", "0", "gateway_client_max_body_size is '0'; use an nginx size such as 1m"),
        ("gateway_client_max_body_size", "1 MB", "gateway_client_max_body_size is '1 MB'"),
        ("gateway_proxy_read_timeout", "15 minutes", "gateway_proxy_read_timeout is '15 minutes'; use an nginx time"),
        ("gateway_access_log_flush", "0s", "gateway_access_log_flush is '0s'"),
        ("ollama_keep_alive", "forever", "ollama_keep_alive is 'forever'; use -1 (always)"),
        ("gateway_webui_upstream", "localhost", "gateway_webui_upstream is 'localhost'; use \"host:port\""),
        ("gateway_acme_directory", "http://acme.example/dir", "gateway_acme_directory is 'http://acme.example/dir'; use an https:// URL"),
        ("llm_engine_bind_address", "10.0.0.300", "llm_engine_bind_address is '10.0.0.300'; use an IP address"),
        ("llm_engine_allow_from", ["10.0.0.0/33"], "llm_engine_allow_from[0] is '10.0.0.0/33'"),
    ],
)
def test_host_problems_name_host_variable_and_fix(var, value, expected):
    errors = validate_host("node7", {var: value}, KNOWN, PREFIXES)
    assert len(errors) == 1, errors
    assert errors[0].startswith("host node7: ")
    assert expected in errors[0], errors[0]


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("gateway_https_port", "8443"), ("gateway_https_port", 443), ("llm_engine_port_base", 8100),
        ("gateway_rate_limit_burst", 1), ("gateway_client_max_body_size", "512k"),
        ("gateway_access_log_buffer", ""), ("gateway_proxy_read_timeout", "900s"),
        ("ollama_keep_alive", "-1"), ("ollama_keep_alive", "24h"), ("ollama_keep_alive", "1h30m"),
        ("gateway_webui_upstream", "127.0.0.1:8080"), ("gateway_webui_upstream", "[::1]:8080"),
        ("llm_gateway_address", ""), ("llm_engine_bind_address", "::1"),
        ("llm_engine_allow_from", ["10.10.0.0/24", "192.0.2.7"]),
        ("vllm_instance_defaults", {"gpu_memory_utilization": 0.9, "max_model_len": 4096}),
        ("llm_cpu_ram_gib", 0), ("llm_gpu_reserve_gib", "1.5"),
        ("docker_users", ["alice"]), ("nvidia_driver_force", False),
        ("gateway_https_port", "{{ 8000 + 443 }}"),  # a template that did not render: skipped
    ],
)
def test_good_values_pass(var, value):
    assert validate_host("n", {var: value}, KNOWN, PREFIXES) == []


def test_every_range_pattern_and_address_is_a_documented_variable():
    for name in [*RANGES, *PATTERNS, *ADDRESSES]:
        var = name.split(".")[0].split("[")[0]
        assert var in KNOWN, name


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


def test_secret_values_are_never_quoted():
    secret = "Zz9-" + "not-a-valid-choice-or-type"
    for var, value in [("vllm_api_key", [secret]), ("gateway_tls_private_key", {"pem": secret}),
                       ("open_webui_admin_password", [secret]), ("vllm_api_key", "Zz9-short")]:
        errors = validate_host("n", {var: value}, KNOWN, PREFIXES)
        assert len(errors) == 1 and secret not in errors[0] and "Zz9-short" not in errors[0], errors


def test_gateway_without_clients_is_refused_even_when_the_variable_is_absent():
    errors = problems({}, groups=("gateway",))
    assert errors == [
        "llm_api_clients is not set, but this host is a gateway and needs at least one client: add "
        "llm_api_clients: [{name: <client>, key: <key>}] (generate one with `openssl rand -base64 48` "
        "and keep it in a vault)"]
    assert problems({}, groups=("llm_nodes",)) == []
    assert problems({"llm_api_clients": [{"name": "a", "key": GOOD}]}, groups=("gateway",)) == []
    (error,) = problems({"gateway_clients": [{"name": "a", "key": GOOD + "\n"}]}, groups=("gateway",))
    assert error.startswith("gateway_clients[0] (a): the key contains whitespace")


def test_open_webui_needs_its_administrator_and_its_own_client():
    clients = [{"name": "alice", "key": GOOD}]
    errors = problems({"llm_api_clients": clients, "open_webui_admin_password": "Zz9-short"},
                      groups=("webui",))
    assert errors == [
        "open_webui_admin_email is ''; set the e-mail address of Open WebUI's first administrator",
        "open_webui_admin_password is missing or shorter than 12 characters (not shown): set the "
        "first administrator's password and keep it in a vault",
        "llm_api_clients has no client named 'open-webui' (open_webui_api_client), Open WebUI's own "
        "key at the gateway: add {name: open-webui, key: <key>} (generate one with `openssl rand "
        "-base64 48` and keep it in a vault)"]
    good = {"llm_api_clients": [*clients, {"name": "ui", "key": OTHER}], "open_webui_api_client": "ui",
            "open_webui_admin_email": "admin@example.org", "open_webui_admin_password": "Zz9-long-enough"}
    assert problems(good, groups=("webui",)) == []
    assert problems({}, groups=("llm_nodes",)) == []


def test_backup_repositories_are_checked_before_any_host_without_quoting_passwords():
    secret = "Zz9-short"
    assert problems({}, groups=("backup",)) == [
        "backup_repositories is empty, but this host is in the group backup: add at least one "
        "{name: <name>, repository: <path, sftp:user@host:/path or s3:https://host/bucket>, password: "
        "<from a vault>} (docs/backup.md)"]
    errors = problems({"backup_repositories": [
        {"name": "Local", "repository": "relative/dir", "password": secret},
        {"name": "off", "repository": "sftp:restic@h:/srv/r", "password": "x" * 16, "colour": 1},
        {"name": "off", "repository": "s3:https://s3.example.org/b", "password": "y" * 16,
         "env": {"AWS_SECRET_ACCESS_KEY": "a\nb"}}], "backup_retention": {"daily": 0}},
        groups=("backup",))
    assert errors == [
        "backup_repositories[0].name is 'Local'; use lower-case letters, digits, - and _",
        "backup_repositories[0].repository is 'relative/dir'; use an absolute path, "
        "sftp:user@host:/path or s3:https://host/bucket",
        "backup_repositories[0].password is missing or shorter than 12 characters (not shown): set the "
        "repository's password and keep it in a vault",
        "backup_repositories[1] has unknown keys colour: use name, repository, password, env",
        "backup_repositories[2].name 'off' is used twice; give each repository its own name",
        "backup_repositories[2].env must be a dict of environment variables (e.g. AWS_ACCESS_KEY_ID), "
        "values on one line (not shown)",
        "backup_sftp_private_key is empty, but an SFTP repository is configured: set it (the host's "
        "key is pinned; StrictHostKeyChecking is never turned off)",
        "backup_sftp_known_hosts is empty, but an SFTP repository is configured: set it (the host's "
        "key is pinned; StrictHostKeyChecking is never turned off)",
        "backup_retention keeps no snapshot: set at least one of last, hourly, daily, weekly, monthly, "
        "yearly above 0"]
    assert not [e for e in errors if secret in e]
    good = {"backup_repositories": [{"name": "local", "repository": "/srv/backup", "password": "p" * 20}],
            "backup_check_subsets": 4}
    assert problems(good, groups=("backup",)) == []
    (error,) = problems({**good, "backup_check_subsets": 0}, groups=("backup",))
    assert error.startswith("backup_check_subsets is 0; use 1 or more")


def test_engine_and_backend_keys_are_checked_without_quoting_them():
    weak = "ab" * 20
    errors = problems({"vllm_api_key": weak, "localai_api_key": GOOD,
                       "gateway_backend_keys": {"m": weak + "\n"}})
    assert [e.split(":")[0] for e in errors] == ["vllm_api_key", "gateway_backend_keys.m"]
    assert all(weak not in e for e in errors)


def test_download_entries_are_checked_before_any_host():
    errors = problems({"llm_model_downloads": {
        "mine": {"path": "models/mine.gguf", "url": "https://h/mine.gguf", "sha256": "TO_BE_FILLED"},
        "bad": {"path": "../mine.gguf", "url": "http://h/mine.gguf", "sha256": "x"},
        "good": {"path": "models/good.gguf", "url": "", "sha256": SHA},
    }})
    assert errors == [
        "llm_model_downloads.bad.path must be a relative path inside the mirror, without '..', '//' "
        "or a leading '/' (e.g. models/name.gguf)",
        "llm_model_downloads.bad.sha256 must be 64 hex digits (the output of `sha256sum FILE`) or "
        "'mirror' (recorded in the mirror's SHA256SUMS by the mirror builder)",
        "llm_model_downloads.bad.url must be an https:// URL (the sha256 protects the file, https the "
        "request), or empty when the mirror builder makes it",
        "llm_model_downloads.mine.sha256 is not recorded yet (TO_BE_FILLED): download the file once "
        "on a connected machine, check it against the publisher's checksum, and record the output "
        "of `sha256sum FILE` as llm_model_downloads.mine.sha256 in the inventory (an entry of the "
        "same name replaces the collection's)",
    ]


def test_models_name_existing_recorded_downloads():
    assert problems({"llm_models": [MODEL]}) == []
    (error,) = problems({"llm_models": [{**MODEL, "download": "nope"}]})
    assert error.startswith("llm_models[0].download names 'nope', which is not an entry of llm_downloads")
    (error,) = problems({"llm_models": [{**MODEL, "download": {"Q8_0": "ollama"}}]})
    assert error.startswith("llm_models[0].download: llm_model_downloads.ollama.sha256 is not recorded yet")
    # the collection's own unrecorded entries pass while nothing names them
    assert problems({"llm_models": [MODEL]}) == []


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({**MODEL, "engine": "olama"}, "llm_models[0].engine is 'olama'"),
        ({**MODEL, "replicas": 0}, "llm_models: model teamllm-tiny: replicas must be a positive integer"),
        ({**MODEL, "context": "long"}, "context must be a positive integer"),
        ({**MODEL, "quantizations": []}, "quantizations must be a non-empty list"),
        ({**MODEL, "host": "node9"}, "pinned host 'node9' is not among the planned hosts"),
        ({**MODEL, "colour": "red"}, "unknown keys colour"),
    ],
)
def test_models_are_checked_with_the_placements_own_input_rules(model, expected):
    (error,) = problems({"llm_models": [model]})
    assert expected in error


@pytest.mark.parametrize(
    ("host_vars", "expected"),
    [
        ({"llm_mirror_url": "http://mirror.lan/"}, "llm_mirror_url uses plain http://"),
        ({"llm_mirror_url": "https://ops:s3cret@mirror.lan/"}, "llm_mirror_url holds credentials"),
        ({"llm_artifact_source": "mirror"}, "llm_artifact_source is 'mirror' but llm_mirror_url is empty"),
        ({"llm_artifact_source": "controller"}, "llm_artifact_source is 'controller' but llm_artifacts_dir is empty"),
    ],
)
def test_mirror_settings(host_vars, expected):
    (error,) = problems(host_vars)
    assert error.startswith(expected)
    assert "s3cret" not in error and "mirror.lan" not in error


def test_groups():
    assert validate_groups({"gateway": ["a"], "llm_nodes": []}, ["gateway", "llm_nodes", "monitoring"]) == [
        "inventory group llm_nodes is empty: add at least one host to it",
        "inventory group monitoring is missing: add at least one host to it",
    ]


def test_a_group_variable_is_reported_once():
    lines = merge_hosts([("a", "x is bad"), ("b", "x is bad"), ("b", "y is bad")], ("a", "b"))
    assert lines == ["every host: x is bad", "host b: y is bad"]
    assert merge_hosts([("a", "x"), ("b", "x")], ("a", "b", "c")) == ["hosts a, b: x"]


def test_the_lab_inventory_is_valid(tmp_path):
    repo = Path(__file__).resolve().parents[4]
    group_vars = {}
    for path in sorted((repo / "inventories" / "lab" / "group_vars" / "all").glob("*.yml")):
        group_vars.update(yaml.safe_load(path.read_text()))
    host_vars = {k: v for k, v in group_vars.items() if "{{" not in str(v)}
    host_vars["llm_artifacts_dir"] = str(tmp_path)
    host_vars["open_webui_admin_password"] = "from-a-file-in-the-cache"
    host_vars["llm_api_clients"] = [{"name": "lab-admin", "key": GOOD}, {"name": "lab-webui", "key": OTHER}]
    collection = yaml.safe_load((repo / "roles" / "_common" / "defaults" / "main" / "downloads.yml")
                                .read_text())["llm_downloads_collection"]
    assert host_problems(host_vars, KNOWN, PREFIXES, groups=("gateway", "llm_nodes", "webui"),
                         collection_downloads=collection, all_hosts=("lab-node1",)) == []


@pytest.mark.parametrize("var", ["llm_engine_allow_from", "llm_monitoring_allow_from"])
@pytest.mark.parametrize("allow", [["0.0.0.0/0"], ["::/0"], ["10.0.0.5", "8.0.0.0/7"]])
def test_world_wide_allow_list_needs_its_opt_in(var, allow):
    errors = problems({var: allow})
    assert len(errors) == 1
    assert errors[0].startswith(f"{var} admits {allow[-1]}, which reaches beyond private networks")
    assert "set llm_engine_allow_wide: true" in errors[0]
    assert problems({var: allow, "llm_engine_allow_wide": True}) == []


def test_private_allow_list_passes():
    assert problems({"llm_engine_allow_from": ["10.0.0.0/8", "192.168.1.7", "fd00::/8"]}) == []


def test_upgrade_variables_are_checked_against_the_models_and_the_manifest():
    base = {"llm_models": [MODEL], "llm_api_clients": [{"name": "a", "key": GOOD}]}
    assert problems(dict(base, upgrade_models={"teamllm-tiny": "tiny"})) == []
    found = problems(dict(base, upgrade_models={"teamllm-tiny": "nope"}))
    assert found == ["upgrade_models.teamllm-tiny names 'nope', which is not an entry of llm_downloads: "
                     "add it to llm_model_downloads (docs/downloads.md)"]
    assert problems(dict(base, upgrade_rollback="yes"))[0].startswith("upgrade_rollback is the string 'yes'")
    assert problems(dict(base, upgrade_drain_timeout=0))[0].startswith("upgrade_drain_timeout")
    assert "are both set" in problems(dict(base, upgrade_models={"teamllm-tiny": "tiny"}, upgrade_rollback=True))[0]
    # the llama.cpp build: an entry of a build archive (here the inventory's own); a model file is not
    build = {"llm_model_downloads": {"my_build": {"path": "llama.cpp/b.tar.gz", "url": "", "sha256": SHA}}}
    assert problems(dict(base, **build, upgrade_engines={"llama_cpp": "my_build"})) == []
    assert problems(dict(base, upgrade_engines={"llama_cpp": "tiny"}))[0].startswith(
        "upgrade_engines.llama_cpp: 'tiny' is not a build archive")
    assert problems(dict(base, upgrade_engines="llama_server_cpu"))[0].startswith(
        "upgrade_engines must be a dict, not str")


OFFLINE = {"llm_offline": True, "llm_artifact_source": "mirror", "llm_mirror_url": "/srv/teamllm-bundle",
           "llm_bundle_public_key": "/keys/teamllm-bundle.pub.gpg"}


@pytest.mark.parametrize("mirror", ["https://mirror.lan/bundle", "/srv/teamllm-bundle", "file:///srv/teamllm-bundle/"])
def test_offline_settings_that_work(mirror):
    assert host_problems({**OFFLINE, "llm_mirror_url": mirror}, KNOWN, PREFIXES) == []


@pytest.mark.parametrize(
    ("host_vars", "expected"),
    [
        ({"llm_artifact_source": "upstream"}, "llm_offline is true but llm_artifact_source is 'upstream': set "
         "llm_artifact_source: mirror"),
        ({"llm_artifact_source": "controller", "llm_artifacts_dir": "/m"}, "llm_offline is true but llm_artifact_source is 'controller'"),
        ({"llm_bundle_public_key": ""}, "llm_offline is true but llm_bundle_public_key is empty: set it to the "
         "bundle's public key on the controller"),
        ({"ollama_model_source": "registry"}, "llm_offline is true but ollama_model_source is 'registry'"),
        ({"llm_offline": "yes"}, "llm_offline is the string 'yes'; write a YAML boolean"),
        ({"llm_mirror_url": "http://mirror.lan/"}, "llm_mirror_url uses plain http://"),
        ({"llm_mirror_url": "file://mirror.lan/srv"}, "llm_mirror_url as a path must be absolute"),
        ({"llm_mirror_url": "/srv/../etc"}, "llm_mirror_url as a path must be absolute"),
    ],
)
def test_offline_settings_refused(host_vars, expected):
    errors = validate_host("node1", {**OFFLINE, **host_vars}, KNOWN, PREFIXES)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"host node1: {expected}"), errors
    assert "mirror.lan" not in errors[0]
