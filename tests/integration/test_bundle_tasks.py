"""_common's download.yml with a signed offline bundle, run for real on the controller
(connection local) against a bundle directory used as `llm_mirror_url` (a path on the node).

- SECURITY row 33: a manifest that is unsigned, signed by another key or changed after signing
  is refused by gpgv before any artifact is downloaded; the message names the host and the fix.
- SECURITY row 28: a file of the bundle changed after signing (its checksum in SHA256SUMS
  changed with it) fails against the signed manifest's sha256 and never reaches the download
  directory.
- The URL is never printed, and a good bundle installs its key and its artifact."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from gpg_keys import gpg, signing_keys

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = b"the tiny model, as the builder wrote it\n"

pytestmark = pytest.mark.skipif(not shutil.which("gpg") or not shutil.which("gpgv"),
                                reason="gpg and gpgv are needed (Debian's gnupg)")


@pytest.fixture(scope="module")
def keys():
    """Two signing keys: {name: (GNUPGHOME, exported public key)}."""
    with signing_keys("builder", "stranger") as made:
        yield made


def _bundle(root: Path, signer_home: str, content: bytes = ARTIFACT) -> Path:
    """A bundle of the format teamllm-bundle/1 holding one file, models/tiny.bin."""
    bundle = root / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "models" / "tiny.bin").write_bytes(content)
    sha = hashlib.sha256(content).hexdigest()
    manifest = {"format": "teamllm-bundle/1", "created": "2026-12-02T07:00:00Z",
                "collection": {"name": "teamllm.stack", "version": "0"},
                "files": [{"path": "models/tiny.bin", "size": len(content), "sha256": sha,
                           "kind": "download", "name": "tiny", "version": "1"}]}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    (bundle / "SHA256SUMS").write_text(f"{sha}  models/tiny.bin\n")
    gpg(signer_home, "--detach-sign", "--output", str(bundle / "manifest.json.sig"),
        str(bundle / "manifest.json"))
    return bundle


def _run(tmp_path: Path, bundle: Path, key: Path, check: bool = False):
    node = tmp_path / "node"
    variables = {
        "llm_artifact_source": "mirror", "llm_mirror_url": str(bundle) + "/",
        "llm_bundle_public_key": str(key),
        "llm_downloads": {"tiny": {"version": "1", "path": "models/tiny.bin", "url": "", "sha256": "mirror"}},
        "llm_download_cache_dir": str(node / "downloads"),
        "_common_bundle_key": str(node / "etc" / "bundle.pub.gpg"),
        "_common_bundle_staging": str(node / "staging"),
        "_common_download": "tiny",
    }
    play = [{"name": "download.yml with a signed bundle", "hosts": "localhost", "connection": "local",
             "gather_facts": False,
             "tasks": [{"name": "Run download.yml",
                        "ansible.builtin.include_role": {"name": "teamllm.stack._common",
                                                         "tasks_from": "download.yml"},
                        "vars": variables},
                       {"name": "Show the sha256 used",
                        "ansible.builtin.debug": {"msg": "used {{ __common_artifact.sha256 }}"}}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    argv = ["ansible-playbook", "-vv", str(tmp_path / "play.yml")] + (["--check"] if check else [])
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    return proc.returncode, proc.stdout + proc.stderr, node


def test_a_signed_bundle_installs_its_key_and_its_artifact(tmp_path, keys):
    home, pub = keys["builder"]
    bundle = _bundle(tmp_path, home)
    rc, out, node = _run(tmp_path, bundle, pub)
    assert rc == 0, out[-4000:]
    assert (node / "downloads" / "tiny.bin").read_bytes() == ARTIFACT
    assert (node / "etc" / "bundle.pub.gpg").read_bytes() == pub.read_bytes()
    assert f"used {hashlib.sha256(ARTIFACT).hexdigest()}" in out
    assert str(bundle) not in out  # the mirror URL is never printed, even at -vv


def test_check_mode_verifies_with_a_new_key_it_does_not_install(tmp_path, keys):
    """A key rotation in check mode: the node still holds the old key; the new one (staged from
    the controller) checks the new bundle, and nothing is written."""
    rc, out, node = _run(tmp_path, _bundle(tmp_path, keys["builder"][0]), keys["builder"][1])
    assert rc == 0, out[-4000:]
    shutil.rmtree(tmp_path / "bundle")
    (node / "downloads" / "tiny.bin").unlink()
    rc, out, node = _run(tmp_path, _bundle(tmp_path, keys["stranger"][0]), keys["stranger"][1], check=True)
    assert rc == 0, out[-4000:]
    assert "used " in out
    assert (node / "etc" / "bundle.pub.gpg").read_bytes() == keys["builder"][1].read_bytes()
    assert not (node / "downloads" / "tiny.bin").exists()


@pytest.mark.parametrize("how", ["unsigned", "stranger", "manifest changed"])
def test_a_manifest_the_key_did_not_sign_is_refused_before_any_download(tmp_path, keys, how):
    home, pub = keys["builder"]
    bundle = _bundle(tmp_path, keys["stranger"][0] if how == "stranger" else home)
    if how == "unsigned":
        (bundle / "manifest.json.sig").unlink()
    elif how == "manifest changed":
        # the attacker serves another file and records its sha256 in the manifest
        evil = b"another file\n"
        (bundle / "models" / "tiny.bin").write_bytes(evil)
        manifest = json.loads((bundle / "manifest.json").read_text())
        manifest["files"][0]["sha256"] = hashlib.sha256(evil).hexdigest()
        (bundle / "manifest.json").write_text(json.dumps(manifest))
    rc, out, node = _run(tmp_path, bundle, pub)
    assert rc != 0
    if how == "unsigned":
        assert "localhost: could not fetch manifest.json.sig of the bundle from llm_mirror_url" in out, out[-4000:]
        assert "A bundle without its signed manifest is refused" in out
    else:
        assert "localhost: the bundle's manifest.json is unsigned, signed by another key or changed since it " \
               "was signed" in out, out[-4000:]
        assert "Nothing was downloaded or changed. Carry the bundle again from its builder" in out
    assert not (node / "downloads").exists()
    assert str(bundle) not in out


def test_a_changed_file_fails_against_the_signed_sha256_and_never_lands(tmp_path, keys):
    home, pub = keys["builder"]
    bundle = _bundle(tmp_path, home)
    evil = b"a changed model\n"
    (bundle / "models" / "tiny.bin").write_bytes(evil)
    # the mirror's own SHA256SUMS says the changed file is fine: it is not consulted
    (bundle / "SHA256SUMS").write_text(f"{hashlib.sha256(evil).hexdigest()}  models/tiny.bin\n")
    rc, out, node = _run(tmp_path, bundle, pub)
    assert rc != 0
    assert f"localhost: tiny.bin (llm_downloads.tiny) could not be fetched or does not match its sha256 " \
           f"{hashlib.sha256(ARTIFACT).hexdigest()}" in out, out[-4000:]
    assert "did not match" in out and "nothing was installed" in out
    assert not (node / "downloads" / "tiny.bin").exists()
    assert str(bundle) not in out
