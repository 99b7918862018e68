"""playbooks/mirror.yml for a small inventory (the lab's choices without Open WebUI: one
llama.cpp node that is also the gateway), run for real through ansible-playbook on the
controller. Its host is a TEST-NET address: the bundle is built without contacting it. The
project's own builds come from a mirror directory made here (the llama.cpp server tarball as
the mirror builder records it in SHA256SUMS, the model pinned by its sha256 in the
inventory); the Debian packages come from Debian's archive through a throw-away container of
the node image (apt's cache is kept under ~/.cache/teamllm/bundle-apt).

Asserted: the manifest lists every file with its size and sha256; gpgv verifies its signature
with the exported key; a tampered file is found by verify_tree and a tampered signature or
manifest fails gpgv; the parts join back into the same bundle and a corrupted part is refused;
the apt repository's InRelease verifies and its Packages lists the roles' packages; a second
run changes nothing and keeps the signed manifest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.teamllm.stack.plugins.module_utils import _bundle as b

REPO = Path(__file__).resolve().parents[2]
KEY = "Zq4v8XkP2mW9rT6yB1nC5hJ7dF3gL0sA-_xE"
SERVER = "llama.cpp/llama-server-0.3.36-linux-x86_64-cpu.tar.gz"
MODEL = b"GGUF" + bytes(range(256)) * 40

pytestmark = pytest.mark.skipif(
    shutil.which("docker") is None or subprocess.run(["docker", "image", "inspect", "teamllm-node:debian12"],
                                                     capture_output=True).returncode != 0,
    reason="needs Docker and the node image teamllm-node:debian12 (lab/lab.sh builds it)")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_mirror(inventory: Path, cwd: Path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    env.pop("ANSIBLE_CONFIG", None)
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(REPO / "playbooks" / "mirror.yml")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    out = proc.stdout + proc.stderr
    assert "UNREACHABLE" not in out and "unreachable=1" not in out, out[-3000:]
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mirror")
    mirror = tmp / "mirror"
    (mirror / "llama.cpp").mkdir(parents=True)
    (mirror / "models").mkdir()
    server = b"llama-server stand-in tarball" * 100
    (mirror / SERVER).write_bytes(server)
    (mirror / "models/test-q8_0.gguf").write_bytes(MODEL)
    (mirror / "SHA256SUMS").write_text(f"{sha(server)}  {SERVER}\n")
    inventory = tmp / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "children": {"llm_nodes": {"hosts": {"node1": {}}}, "gateway": {"hosts": {"node1": {}}}},
        "vars": {"ansible_host": "192.0.2.1", "ansible_connection": "ssh"}}}))
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "llm_api_clients": [{"name": "alice", "key": KEY}],
        "llm_models": [{"name": "test", "engine": "llama_cpp", "quantizations": ["Q8_0"], "download": "test_gguf",
                        "context": 2048}],
        "llm_model_downloads": {"test_gguf": {"version": "1", "path": "models/test-q8_0.gguf", "url": "",
                                              "sha256": sha(MODEL)}},
        "llm_cpu_inference": True,
        "llm_cpu_ram_gib": 8,
        "llm_artifacts_dir": str(mirror),
        "llm_bundle_dir": str(tmp / "bundle"),
        "llm_bundle_key_dir": str(tmp / "key"),
        "llm_bundle_split_size": "2MiB",
        "llm_bundle_parts_dir": str(tmp / "parts"),
    }))
    out = run_mirror(inventory, tmp)
    return {"tmp": tmp, "bundle": tmp / "bundle", "key": tmp / "key" / b.PUBLIC_KEY, "parts": tmp / "parts",
            "inventory": inventory, "out": out}


def gpgv(keyring: Path, *args: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["gpgv", "--keyring", str(keyring), *map(str, args)], capture_output=True, text=True)


def manifest_of(bundle: Path) -> dict:
    return b.load_manifest((bundle / b.MANIFEST).read_bytes())


def test_manifest_lists_every_file_with_its_sha256(built):
    bundle = built["bundle"]
    manifest = manifest_of(bundle)
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == on_disk - set(b.UNLISTED)
    for path, item in listed.items():
        data = (bundle / path).read_bytes()
        assert item["size"] == len(data) and item["sha256"] == sha(data), path
    assert listed["models/test-q8_0.gguf"]["name"] == "test_gguf"
    assert listed[SERVER]["kind"] == "download" and listed[SERVER]["name"] == "llama_server_cpu"
    # only what the inventory installs: no Open WebUI (no group webui), no other engine
    assert not any(p.startswith(("open-webui/", "ollama/", "vllm/")) for p in listed)
    debs = [f for f in manifest["files"] if f["kind"] == "apt"]
    assert {"nginx", "nftables", "libnginx-mod-http-lua"} <= {f["name"] for f in debs}
    sums = (bundle / "SHA256SUMS").read_text()
    assert f"{listed[SERVER]['sha256']}  {SERVER}\n" in sums
    sbom = json.loads((bundle / "bom.cdx.json").read_text())
    assert sbom["specVersion"] == "1.5"
    assert {c["bom-ref"] for c in sbom["components"]} == {f["path"] for f in manifest["files"]
                                                           if f["kind"] in ("download", "apt")}
    assert "bundle: " in built["out"] and "built in " in built["out"]


def test_signature_verifies_and_tampering_is_found(built, tmp_path):
    bundle, key = built["bundle"], built["key"]
    assert (bundle / b.PUBLIC_KEY).read_bytes() == key.read_bytes()
    good = gpgv(key, bundle / b.SIGNATURE, bundle / b.MANIFEST)
    assert good.returncode == 0, good.stderr
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = manifest_of(copy)
    # a file changed after signing: the manifest (still good) names it
    model = copy / "models/test-q8_0.gguf"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    assert b.verify_tree(str(copy), manifest) == ["models/test-q8_0.gguf: sha256 differs from the manifest's"]
    # a signature or a manifest changed: gpgv refuses it
    sig = bytearray((copy / b.SIGNATURE).read_bytes())
    sig[-5] ^= 0x40
    (copy / b.SIGNATURE).write_bytes(bytes(sig))
    assert gpgv(key, copy / b.SIGNATURE, copy / b.MANIFEST).returncode != 0
    shutil.copyfile(bundle / b.SIGNATURE, copy / b.SIGNATURE)
    text = (copy / b.MANIFEST).read_text().replace(manifest["files"][0]["sha256"], "0" * 64)
    (copy / b.MANIFEST).write_text(text)
    assert gpgv(key, copy / b.SIGNATURE, copy / b.MANIFEST).returncode != 0
    # signed by another key: refused too
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    subprocess.run(["gpg", "--homedir", str(other), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                    "--quick-gen-key", "someone else", "ed25519", "sign", "never"], check=True, capture_output=True)
    subprocess.run(["gpg", "--homedir", str(other), "--batch", "--yes", "--detach-sign", "--output",
                    str(copy / b.SIGNATURE), str(bundle / b.MANIFEST)], check=True, capture_output=True)
    subprocess.run(["gpgconf", "--homedir", str(other), "--kill", "gpg-agent"], capture_output=True)
    assert gpgv(key, copy / b.SIGNATURE, bundle / b.MANIFEST).returncode != 0


def test_parts_join_into_the_same_bundle_and_a_corrupted_part_is_refused(built, tmp_path):
    parts = built["parts"]
    document = json.loads((parts / "teamllm-bundle.parts.json").read_text())
    assert len(document["parts"]) >= 2
    assert all(p["size"] <= 2 * 1024**2 for p in document["parts"])
    assert document["manifest_sha256"] == sha((built["bundle"] / b.MANIFEST).read_bytes())
    joined = tmp_path / "joined.tar"
    b.join_parts(str(parts / "teamllm-bundle.parts.json"), str(joined))
    b.unpack_tar(str(joined), str(tmp_path / "bundle"))
    assert b.verify_tree(str(tmp_path / "bundle"), manifest_of(tmp_path / "bundle")) == []
    assert (tmp_path / "bundle" / b.MANIFEST).read_bytes() == (built["bundle"] / b.MANIFEST).read_bytes()
    bad = tmp_path / "parts"
    shutil.copytree(parts, bad)
    part = bad / document["parts"][-1]["path"]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 1
    part.write_bytes(bytes(data))
    with pytest.raises(b.BundleError, match=f"{document['parts'][-1]['path']}: sha256 differs"):
        b.join_parts(str(bad / "teamllm-bundle.parts.json"), str(tmp_path / "bad.tar"))
    assert not (tmp_path / "bad.tar").exists()


def test_apt_repository_index_is_signed_and_lists_the_packages(built):
    repo = built["bundle"] / "apt" / "bookworm"
    signed = subprocess.run(["gpgv", "--keyring", str(built["key"]), "--output", "-", str(repo / "InRelease")],
                            capture_output=True)
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout == (repo / "Release").read_bytes()
    release = (repo / "Release").read_text()
    assert sha((repo / "Packages").read_bytes()) in release
    packages = (repo / "Packages").read_text()
    names = {line.split(": ", 1)[1] for line in packages.splitlines() if line.startswith("Package: ")}
    assert {"nginx", "libnginx-mod-http-lua", "lua-cjson", "nftables", "mtail", "ssl-cert"} <= names
    debs = {p.name for p in repo.glob("*.deb")}
    assert len(debs) == len(names)
    for stanza in packages.split("\n\n"):
        if stanza.strip():
            fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
            assert sha((repo / fields["Filename"]).read_bytes()) == fields["SHA256"]


def test_second_run_changes_nothing(built):
    before = (built["bundle"] / b.MANIFEST).read_bytes()
    out = run_mirror(built["inventory"], built["tmp"])
    assert "changed=0" in out, out[-3000:]
    assert (built["bundle"] / b.MANIFEST).read_bytes() == before
