"""The offline preflight (playbooks/offline_preflight.yml, in site.yml after validate.yml), run for real on the controller (SECURITY
row 29: before any host changes, every artifact and Debian package the inventory's hosts will
install that the bundle lacks is listed; an unsigned or mis-signed bundle is refused). The
host does not exist: a play that tried to reach it would fail "unreachable"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from gpg_keys import gpg, signing_keys

from ansible_collections.teamllm.stack.plugins.module_utils import _bundle

REPO = Path(__file__).resolve().parents[2]
KEY = "Zq4v8XkP2mW9rT6yB1nC5hJ7dF3gL0sA-_xE"
SHA = "5" * 64

pytestmark = pytest.mark.skipif(not shutil.which("gpg") or not shutil.which("gpgv"),
                                reason="gpg and gpgv are needed (Debian's gnupg)")


@pytest.fixture(scope="module")
def keys():
    """Two signing keys: {name: (GNUPGHOME, exported public key)}."""
    with signing_keys("builder", "stranger") as made:
        yield made


GROUPS = {"gateway": ["node1"], "llm_nodes": ["node1"]}


def _group_vars(bundle: Path, pub: Path) -> dict:
    return {
        "llm_api_clients": [{"name": "alice", "key": KEY}],
        "llm_offline": True, "llm_artifact_source": "mirror", "llm_mirror_url": "/srv/teamllm-bundle",
        "llm_bundle_public_key": str(pub), "llm_bundle_dir": str(bundle), "llm_bundle_releases": ["bookworm"],
        "llm_cpu_inference": True,
        "llm_models": [{"name": "teamllm-tiny", "engine": "llama_cpp", "quantizations": ["Q8_0"],
                        "download": "teamllm_tiny_gguf"}],
    }


def _needs(group_vars: dict) -> tuple[dict, list[str]]:
    """What the inventory's one host installs, as the builder computes it."""
    downloads = yaml.safe_load((REPO / "roles/_common/defaults/main/downloads.yml").read_text())
    mapping = yaml.safe_load((REPO / "roles/_common/vars/apt_packages.yml").read_text())
    hostvars = {"node1": group_vars}
    needed = _bundle.needed_downloads(hostvars, GROUPS, downloads["llm_downloads_collection"])
    debian, _repos = _bundle.inventory_apt_packages(mapping["_common_role_apt_packages"], hostvars, GROUPS,
                                                    "bookworm")
    return needed, debian


def _bundle_dir(tmp_path: Path, home: str, files: list[dict]) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    manifest = {"format": "teamllm-bundle/1", "created": "2026-12-02T07:00:00Z",
                "collection": {"name": "teamllm.stack", "version": "0"},
                "files": sorted(files, key=lambda f: f["path"])}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    gpg(home, "--detach-sign", "--output", str(bundle / "manifest.json.sig"), str(bundle / "manifest.json"))
    return bundle


def _files(needed: dict, debian: list[str], leave_out=()) -> list[dict]:
    files = []
    for name, slot in needed.items():
        entry = slot["entry"]
        if name in leave_out or not entry.get("path"):
            continue
        sha = entry["sha256"] if len(str(entry.get("sha256"))) == 64 else SHA
        files.append({"path": entry["path"], "size": 1, "sha256": sha, "kind": "download", "name": name,
                      "version": str(entry.get("version", ""))})
    for package in debian:
        if package not in leave_out:
            files.append({"path": f"apt/bookworm/{package}_1_amd64.deb", "size": 1, "sha256": SHA, "kind": "apt",
                          "name": package, "version": "1"})
    files.append({"path": "apt/bookworm/InRelease", "size": 1, "sha256": SHA, "kind": "apt-index",
                  "name": "InRelease", "version": ""})
    return files


def _validate(tmp_path: Path, group_vars: dict):
    inventory = {"all": {"children": {g: {"hosts": {h: {} for h in hosts}} for g, hosts in GROUPS.items()},
                         "vars": {"ansible_host": "192.0.2.1", "ansible_connection": "ssh"}}}
    (tmp_path / "inv" / "group_vars").mkdir(parents=True)
    (tmp_path / "inv" / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "inv" / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    proc = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "inv" / "hosts.yml"),
                           str(REPO / "playbooks" / "offline_preflight.yml")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    out = proc.stdout + proc.stderr
    assert "UNREACHABLE" not in out
    return proc.returncode, out


def test_a_complete_bundle_passes(tmp_path, keys):
    home, pub = keys["builder"]
    needed, debian = _needs(_group_vars(tmp_path / "bundle", pub))
    assert "teamllm_tiny_gguf" in needed and "nginx" in debian
    bundle = _bundle_dir(tmp_path, home, _files(needed, debian))
    rc, out = _validate(tmp_path, _group_vars(bundle, pub))
    assert rc == 0, out[-4000:]
    assert "List what the hosts will install that the bundle lacks" in out


def test_what_the_bundle_lacks_is_listed_before_any_host_changes(tmp_path, keys):
    home, pub = keys["builder"]
    needed, debian = _needs(_group_vars(tmp_path / "bundle", pub))
    bundle = _bundle_dir(tmp_path, home, _files(needed, debian, leave_out=("teamllm_tiny_gguf", "nginx")))
    rc, out = _validate(tmp_path, _group_vars(bundle, pub))
    assert rc != 0
    assert f"The offline bundle at {bundle} lacks what this inventory's hosts will install; nothing was changed" \
        in out, out[-4000:]
    assert "- llm_downloads.teamllm_tiny_gguf: models/teamllm-tiny-q8_0.gguf is not in the bundle" in out
    assert "- apt package nginx (bookworm) is not in the bundle's apt/bookworm/ repository" in out
    listed = {line.strip() for line in out.splitlines() if line.strip().startswith("- ") and "not in the bundle" in line}
    assert len(listed) == 2, listed  # nothing else is reported missing


def test_a_bundle_signed_by_another_key_is_refused(tmp_path, keys):
    needed, debian = _needs(_group_vars(tmp_path / "bundle", keys["builder"][1]))
    bundle = _bundle_dir(tmp_path, keys["stranger"][0], _files(needed, debian))
    rc, out = _validate(tmp_path, _group_vars(bundle, keys["builder"][1]))
    assert rc != 0
    assert "hosts node1: llm_offline is true, but the bundle at llm_bundle_dir" in out, out[-4000:]
    assert "has no manifest.json signed by llm_bundle_public_key" in out


def test_a_missing_key_is_refused(tmp_path, keys):
    home, pub = keys["builder"]
    needed, debian = _needs(_group_vars(tmp_path / "bundle", pub))
    bundle = _bundle_dir(tmp_path, home, _files(needed, debian))
    rc, out = _validate(tmp_path, _group_vars(bundle, tmp_path / "nope.gpg"))
    assert rc != 0
    assert f"hosts node1: llm_bundle_public_key is '{tmp_path / 'nope.gpg'}', which is not a file on the controller" \
        in out, out[-4000:]
