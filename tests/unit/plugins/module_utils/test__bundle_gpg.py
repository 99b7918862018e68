"""The bundle key and its signatures through the real gpg and gpgv (skipped where they are
missing): a key is made once and kept, detached and clearsigned signatures verify, and a
changed file, signature or signer does not."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _bundle_gpg as g

pytestmark = pytest.mark.skipif(not (shutil.which("gpg") and shutil.which("gpgv")), reason="needs gpg and gpgv")


def run(argv):
    proc = subprocess.run(argv, capture_output=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def key(tmp_path):
    key_dir = str(tmp_path / "key")
    fpr = g.generate(run, key_dir)
    (tmp_path / "key" / "teamllm-bundle.pub.gpg").write_bytes(g.export(run, key_dir, fpr))
    yield key_dir, fpr
    subprocess.run(["gpgconf", "--homedir", key_dir, "--kill", "gpg-agent"], capture_output=True)


def test_key_is_made_once_in_a_private_home(key, tmp_path):
    key_dir, fpr = key
    assert len(fpr) == 40
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o700
    assert g.fingerprint(run, key_dir) == fpr
    assert g.fingerprint(run, str(tmp_path / "none")) == ""


def test_detached_and_clearsigned_signatures(key, tmp_path):
    key_dir, fpr = key
    keyring = g.public_key_path(key_dir)
    data = tmp_path / "manifest.json"
    data.write_bytes(b'{"files": []}\n')
    sig = tmp_path / "manifest.json.sig"
    g.sign(run, key_dir, fpr, str(data), str(sig), "detach")
    assert g.verify_detached(run, keyring, str(sig), str(data))
    data.write_bytes(b'{"files": [1]}\n')
    assert not g.verify_detached(run, keyring, str(sig), str(data))
    release = tmp_path / "Release"
    release.write_bytes(b"Origin: teamllm.stack\nSHA256:\n abc 1 Packages\n")
    inrelease = tmp_path / "InRelease"
    g.sign(run, key_dir, fpr, str(release), str(inrelease), "clearsign")
    assert g.verify_clearsigned(run, keyring, str(inrelease), release.read_bytes())
    assert not g.verify_clearsigned(run, keyring, str(inrelease), b"Origin: other\n")
    inrelease.write_bytes(inrelease.read_bytes().replace(b"teamllm.stack", b"teamllm.stacK"))
    # the text now says what the changed Release would say, but its signature no longer holds
    assert not g.verify_clearsigned(run, keyring, str(inrelease),
                                    release.read_bytes().replace(b"teamllm.stack", b"teamllm.stacK"))
