"""The inventory validation plays, run for real through ansible-playbook on the controller.

Each bad inventory must fail the run in the validation plays, with a message naming the host,
the variable and the fix, before any host is contacted (the hosts below do not exist: a play
that tried to reach them would fail with "unreachable", which the tests reject). An inventory
that does not parse, a mistyped -i path and an empty inventory fail the run, with and without
the collection's ansible.cfg (SECURITY row 41). No secret appears at -vvv (row 42)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GOOD_KEY = "Zq4v8XkP2mW9rT6yB1nC5hJ7dF3gL0sA-_xE"
OTHER_KEY = "pL9mN2bV7cX4zQ8wE1rT6yU3iO5aS0dF-_gH"
SHA = "5" * 64


def ansible_playbook(args, cwd: Path, timeout: int = 180) -> tuple[int, str]:
    """ansible-playbook with the checkout's collections; cwd=REPO reads the collection's
    ansible.cfg, any other directory none (no ~/.ansible.cfg or /etc/ansible/ansible.cfg
    here)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    env.pop("ANSIBLE_CONFIG", None)
    proc = subprocess.run(["ansible-playbook", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def write_inventory(tmp_path: Path, group_vars: dict, host_vars: dict | None = None,
                    groups=("gateway", "llm_nodes")) -> Path:
    inventory = {"all": {"children": {g: {"hosts": {"node1": host_vars or {}}} for g in groups},
                         "vars": {"ansible_host": "192.0.2.1", "ansible_connection": "ssh"}}}
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    return tmp_path / "hosts.yml"


def run_site(tmp_path: Path, group_vars: dict, host_vars: dict | None = None, groups=("gateway", "llm_nodes")):
    hosts = write_inventory(tmp_path, group_vars, host_vars, groups)
    return ansible_playbook(["-i", hosts, REPO / "site.yml"], REPO)


def untouched(out: str) -> bool:
    return "UNREACHABLE" not in out and "unreachable=1" not in out


BASE = {
    "llm_api_clients": [{"name": "alice", "key": GOOD_KEY}],
    "gateway_routes": {"m": ["127.0.0.1:8081"]},
}
NOT_RECORDED = {"path": "models/mine.gguf", "url": "https://huggingface.co/x/mine.gguf", "sha256": "TO_BE_FILLED"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"gatway_https_port": 443}, "host node1: unknown variable gatway_https_port: did you mean gateway_https_port"),
        ({"llama_cpp_instancess": []}, "host node1: unknown variable llama_cpp_instancess"),
        ({"gateway_https_port": "four-four-three"}, "host node1: gateway_https_port must be an integer"),
        ({"llm_artifact_source": "ftp"}, "llm_artifact_source is 'ftp'; choose one of upstream, mirror, controller"),
        ({"llm_cpu_inference": "yes"}, "llm_cpu_inference is the string 'yes'; write a YAML boolean"),
        ({"llm_models": [{"name": "llama-3.1-8b", "engine": "olama"}]}, "llm_models[0].engine is 'olama'"),
        ({"llm_api_clients": [{"name": "alice", "key": "short"}]}, "llm_api_clients[0] (alice): the key is 5 bytes long"),
        ({"llm_api_clients": [{"name": "alice", "key": ""}]}, "llm_api_clients[0] (alice): the key is empty"),
        ({"llm_api_clients": [{"name": "alice", "key": "CHANGE_ME_CHANGE_ME_CHANGE_ME_CHANGE_ME"}]}, "looks like a placeholder"),
        ({"llm_api_clients": [{"name": "alice", "key": GOOD_KEY}, {"name": "bob", "key": GOOD_KEY}]},
         "the same key is given to alice"),
        ({"llm_engine_allow_from": ["10.0.0.5", "0.0.0.0/0"]},
         "host node1: llm_engine_allow_from admits 0.0.0.0/0, which reaches beyond private networks"),
        ({"llm_engine_allow_from": ["::/0"]}, "set llm_engine_allow_wide: true"),
        # finding 3: ranges, keys, downloads and the mirror, before any host
        ({"gateway_https_port": 70000}, "host node1: gateway_https_port is 70000; use from 1 to 65535 (a TCP port)"),
        ({"gateway_rate_limit_burst": 0}, "host node1: gateway_rate_limit_burst is 0; use 1 or more"),
        ({"gateway_client_max_body_size": "1 MB"}, "host node1: gateway_client_max_body_size is '1 MB'; use an nginx size"),
        ({"vllm_instance_defaults": {"gpu_memory_utilization": 1.5}},
         "host node1: vllm_instance_defaults.gpu_memory_utilization is 1.5; use above 0 and at most 1"),
        ({"llm_api_clients": [{"name": "alice", "key": GOOD_KEY, "burst": 0}]},
         "llm_api_clients[0] (alice): burst must be a whole number of 1 or more"),
        ({"llm_api_clients": [{"name": "alice", "key": GOOD_KEY + "\n"}]},
         "llm_api_clients[0] (alice): the key contains whitespace or a control character"),
        ({"llm_api_clients": [{"name": "alice", "key": "abcdefgh" * 5}]}, "bits of randomness; at least 128"),
        ({"llm_model_downloads": {"mine": NOT_RECORDED}},
         "host node1: llm_model_downloads.mine.sha256 is not recorded yet (TO_BE_FILLED)"),
        ({"llm_model_downloads": {"mine": {**NOT_RECORDED, "sha256": SHA, "path": "../../etc/x"}}},
         "host node1: llm_model_downloads.mine.path must be a relative path inside the mirror"),
        ({"llm_model_downloads": {"mine": {**NOT_RECORDED, "sha256": SHA, "url": "http://h/mine.gguf"}}},
         "host node1: llm_model_downloads.mine.url must be an https:// URL"),
        ({"llm_mirror_url": "http://mirror.lan/teamllm", "llm_artifact_source": "mirror"},
         "host node1: llm_mirror_url uses plain http://"),
        ({"llm_models": [{"name": "m", "engine": "llama_cpp", "quantizations": ["Q8_0"], "download": "nope"}]},
         "host node1: llm_models[0].download names 'nope', which is not an entry of llm_downloads"),
    ],
)
def test_bad_inventory_fails_before_any_host_is_touched(tmp_path, change, expected):
    rc, out = run_site(tmp_path, {**BASE, **change})
    assert rc != 0
    assert "Validate the inventory before any host is touched" in out
    assert expected in out, out[-3000:]
    assert untouched(out)
    for key in (GOOD_KEY, OTHER_KEY):
        assert key not in out


def test_a_gateway_without_clients_fails_although_the_variable_is_absent(tmp_path):
    rc, out = run_site(tmp_path, {"gateway_routes": {"m": ["127.0.0.1:8081"]}})
    assert rc != 0 and untouched(out)
    assert ("host node1: llm_api_clients is not set, but this host is a gateway and needs at least "
            "one client") in out, out[-3000:]
    assert "openssl rand -base64 48" in out


def test_empty_group_fails(tmp_path):
    rc, out = run_site(tmp_path, BASE, groups=("llm_nodes",))
    assert rc != 0 and untouched(out)
    assert "The inventory has no host in the group(s) gateway: add the gateway host to the group gateway" in out


def test_world_wide_allow_list_passes_validation_with_its_opt_in(tmp_path):
    rc, out = run_site(tmp_path, {**BASE, "llm_engine_allow_from": ["0.0.0.0/0"], "llm_engine_allow_wide": True})
    assert "problem(s); nothing was changed" not in out, out[-3000:]
    assert rc != 0 and ("UNREACHABLE" in out or "unreachable=1" in out)


def test_valid_inventory_passes_validation_then_needs_the_host(tmp_path):
    # A good inventory passes the validation play; the next play then tries to reach the host,
    # which proves validation did not stop it.
    rc, out = run_site(tmp_path, {**BASE, "gateway_https_port": 8443, "llm_cpu_inference": False})
    assert "ok: [node1 -> localhost" in out, out[-3000:]
    assert "problem(s); nothing was changed" not in out
    assert rc != 0 and not untouched(out)


# --- finding 2: an inventory that is not read must fail the run (SECURITY row 41) -----------

BROKEN = "all:\n  hosts:\n    node1: [\n"


@pytest.mark.parametrize("config", ["collection ansible.cfg", "no ansible.cfg"])
@pytest.mark.parametrize("case", ["does not parse", "mistyped -i path", "empty", "groups without hosts"])
def test_an_inventory_that_is_not_read_fails_the_run(tmp_path, case, config):
    inventory = tmp_path / "inventories" / "team" / "hosts.yml"
    inventory.parent.mkdir(parents=True)
    text = {"does not parse": BROKEN, "empty": "", "groups without hosts": "all:\n  children:\n    gateway:\n    llm_nodes:\n"}
    if case == "mistyped -i path":
        inventory = tmp_path / "inventories" / "teem"
    else:
        inventory.write_text(text[case])
    cwd = REPO if config == "collection ansible.cfg" else tmp_path
    rc, out = ansible_playbook(["-i", inventory, REPO / "site.yml"], cwd)
    assert rc != 0, out[-3000:]
    assert "PLAY RECAP" not in out or "failed=1" in out
    if config == "collection ansible.cfg" and case in ("does not parse", "mistyped -i path"):
        # [inventory] unparsed_is_failed: Ansible stops before any play, naming the source
        assert f"Completely failed to parse inventory source {inventory}" in out, out[-3000:]
    else:
        # the first play runs on the implicit localhost and names the fix
        assert "The inventory has no hosts: it was not found or did not parse" in out, out[-3000:]
        assert f"Check the path given to -i (ansible-playbook site.yml -i inventories/<your team>; read from: {inventory})" in out


def test_one_unparsed_source_of_several_fails_with_the_collection_config(tmp_path):
    good = write_inventory(tmp_path, BASE)
    broken = tmp_path / "more.yml"
    broken.write_text(BROKEN)
    rc, out = ansible_playbook(["-i", good, "-i", broken, REPO / "site.yml"], REPO)
    assert rc != 0 and untouched(out)
    assert f"Completely failed to parse inventory source {broken}" in out, out[-3000:]


# --- finding 8: nothing secret at any verbosity (SECURITY row 42) ----------------------------

SECRETS = {
    "alice": "Alice0Key-" + "q7Xv2Lm9Pz4Rt8Wk3Ny6Bc1Hd5Jg0Fs",
    "webui": "WebUI0Key-" + "r8Yw3Mn0Qa5Su9Xl4Oz7Cd2Ie6Kh1Gt",
    "vllm": "Vllm0Key-" + "s9Zx4No1Rb6Tv0Ym5Pa8De3Jf7Li2Hu",
    "admin": "Admin-Pass-" + "t0Ay5Op2Sc7Uw1Zn",
    "mirror": "Mirror-Pass-" + "u1Bz6Pq3Td8Vx2",
}
SECRET_INVENTORY = {
    "llm_api_clients": [{"name": "alice", "key": SECRETS["alice"]}, {"name": "open-webui", "key": SECRETS["webui"]}],
    "llm_models": [{"name": "llama-3.1-8b", "alias": "chat", "engine": "vllm", "quantizations": ["BF16"],
                    "context": 4096, "download": "teamllm_tiny_gguf", "host": "node1"}],
    "open_webui_admin_email": "admin@example.org",
    "open_webui_admin_password": SECRETS["admin"],
    "llm_engine_bind_address": "10.1.0.2",
}
VALIDATE_AND_PLACE = (
    f"- ansible.builtin.import_playbook: {REPO / 'playbooks' / 'validate.yml'}\n"
    f"- ansible.builtin.import_playbook: {REPO / 'playbooks' / 'placement.yml'}\n"
)


def assert_no_secret(out: str):
    for name, secret in SECRETS.items():
        assert secret not in out, f"the {name} secret was printed"
    assert "ops:" not in out


def test_validation_and_placement_print_no_secret_at_vvv(tmp_path):
    hosts = write_inventory(tmp_path, SECRET_INVENTORY, {
        "llm_gpus_declared": [{"name": "NVIDIA GeForce RTX 3090", "memory_gb": 24}],
        "vllm_api_key": SECRETS["vllm"]}, groups=("gateway", "llm_nodes", "webui"))
    (tmp_path / "play.yml").write_text(VALIDATE_AND_PLACE)
    rc, out = ansible_playbook(["-vvv", "-i", hosts, tmp_path / "play.yml"], REPO)
    assert rc == 0, out[-3000:]
    assert untouched(out)
    assert "Place the models and plan their deployment" in out  # the placement ran
    assert_no_secret(out)


def test_mirror_credentials_are_refused_and_never_printed_at_vvv(tmp_path):
    mirror = f"https://ops:{SECRETS['mirror']}@mirror.lan/teamllm"
    hosts = write_inventory(tmp_path, {**SECRET_INVENTORY, "llm_mirror_url": mirror,
                                       "llm_artifact_source": "mirror"})
    rc, out = ansible_playbook(["-vvv", "-i", hosts, REPO / "site.yml"], REPO)
    assert rc != 0 and untouched(out)
    assert "llm_mirror_url holds credentials" in out, out[-3000:]
    assert_no_secret(out)
    assert "mirror.lan" not in out


def test_a_download_from_a_mirror_url_with_credentials_prints_none_at_vvv(tmp_path):
    # the download step used on its own (a role run without validate.yml), on the controller
    (tmp_path / "play.yml").write_text(f"""
- name: Download one entry from a mirror whose URL holds credentials
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    llm_artifact_source: mirror
    llm_mirror_url: "https://ops:{SECRETS['mirror']}@127.0.0.1:9/teamllm"
    llm_download_cache_dir: "{tmp_path / 'cache'}"
  tasks:
    - name: Fetch the tiny model
      ansible.builtin.include_role:
        name: teamllm.stack._common
        tasks_from: download.yml
      vars:
        _common_download: teamllm_tiny_gguf
""")
    rc, out = ansible_playbook(["-vvv", "-i", "localhost,", tmp_path / "play.yml"], REPO)
    assert rc != 0
    assert "llm_mirror_url holds credentials (user:password@; the URL is not shown)" in out, out[-3000:]
    assert_no_secret(out)
    assert not (tmp_path / "cache").exists()


def test_a_duplicate_key_is_reported_by_line_without_its_value(tmp_path):
    hosts = write_inventory(tmp_path, {})
    clients = tmp_path / "group_vars" / "all.yml"
    clients.write_text(
        "gateway_routes: {m: ['127.0.0.1:8081']}\n"
        "llm_api_clients:\n"
        "  - name: alice\n"
        f"    key: {SECRETS['alice']}\n"
        f"    key: {SECRETS['webui']}\n")
    rc, out = ansible_playbook(["-vvv", "-i", hosts, REPO / "site.yml"], REPO)
    assert rc != 0 and untouched(out)
    assert f"{clients} line 5: the key 'key' is given twice in one mapping" in out, out[-3000:]
    assert_no_secret(out)


def test_without_the_collection_config_a_vaulted_file_still_hides_its_lines(tmp_path):
    # Ansible's own duplicate-key warning prints the lines around the key (docs/inventory.md):
    # a vault-encrypted file is shown as "content encrypted".
    hosts = write_inventory(tmp_path, {})
    clients = tmp_path / "group_vars" / "all.yml"
    clients.write_text(f"llm_api_clients:\n  - name: alice\n    key: {SECRETS['alice']}\n"
                       f"    key: {SECRETS['webui']}\ngateway_routes: {{m: ['127.0.0.1:8081']}}\n")
    password = tmp_path / "vault-password"
    password.write_text("test-only-vault-password\n")
    subprocess.run(["ansible-vault", "encrypt", "--vault-password-file", str(password), str(clients)],
                   check=True, capture_output=True, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    rc, out = ansible_playbook(["-vvv", "--vault-password-file", password, "-i", hosts,
                                REPO / "site.yml"], tmp_path)
    assert "Found duplicate mapping key 'key'" in out and "content encrypted" in out, out[-3000:]
    assert_no_secret(out)
