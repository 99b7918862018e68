# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0
"""The bundle key and its signatures, through gpg and gpgv (docs/airgap.md).

The key is an OpenPGP ed25519 signing key without a passphrase in a GNUPGHOME of its own
(mode 0700): protect that directory. Every function takes ``run``, a callable
``run(argv) -> (rc, stdout bytes, stderr bytes)`` (the module's ``run_command`` with
``encoding=None``, or subprocess in tests), so this file runs no process itself. Private to
the collection."""

from __future__ import annotations

import os

from ansible_collections.teamllm.stack.plugins.module_utils._bundle import PUBLIC_KEY, BundleError

DEFAULT_UID = "teamllm.stack bundle signing key"


def gpg(key_dir, *args):
    return ["gpg", "--homedir", key_dir, "--batch", "--no-tty", "--pinentry-mode", "loopback",
            "--passphrase", "", *args]


def _checked(run, argv, what):
    rc, out, err = run(argv)
    if rc != 0:
        text = err.decode(errors="replace") if isinstance(err, bytes) else str(err)
        raise BundleError(f"{what} failed (gpg exit {rc}): {text.strip()[-400:]}")
    return out


def fingerprint(run, key_dir):
    """The fingerprint of the first secret key in ``key_dir``, or "" when it holds none."""
    if not os.path.isdir(key_dir):
        return ""
    rc, out, _err = run(gpg(key_dir, "--with-colons", "--list-secret-keys"))
    if rc != 0:
        return ""
    secret = False
    for line in out.decode(errors="replace").splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            secret = True
        elif fields[0] == "fpr" and secret:
            return fields[9]
    return ""


def generate(run, key_dir, uid=DEFAULT_UID):
    """Create the ed25519 signing key in ``key_dir`` (made 0700); returns its fingerprint."""
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    os.chmod(key_dir, 0o700)
    _checked(run, gpg(key_dir, "--quick-gen-key", uid, "ed25519", "sign", "never"), "generating the bundle key")
    found = fingerprint(run, key_dir)
    if not found:
        raise BundleError(f"gpg made no secret key in {key_dir}")
    return found


def export(run, key_dir, fpr):
    """The public key as a binary keyring (``gpg --export``)."""
    return _checked(run, gpg(key_dir, "--export", fpr), "exporting the bundle's public key")


def public_key_path(key_dir):
    return os.path.join(key_dir, PUBLIC_KEY)


def verify_detached(run, keyring, signature, data_path):
    """Whether ``signature`` is a good signature of ``data_path`` by a key of ``keyring``."""
    if not (os.path.isfile(signature) and os.path.isfile(keyring)):
        return False
    rc, _out, _err = run(["gpgv", "--keyring", os.path.abspath(keyring), signature, data_path])
    return rc == 0


def verify_clearsigned(run, keyring, signed, expected):
    """Whether ``signed`` (an InRelease) is good by ``keyring`` and holds exactly ``expected``
    (the Release bytes)."""
    if not (os.path.isfile(signed) and os.path.isfile(keyring)):
        return False
    rc, out, _err = run(["gpgv", "--keyring", os.path.abspath(keyring), "--output", "-", signed])
    return rc == 0 and out == expected


def sign(run, key_dir, fpr, src, dest, mode):
    """Sign ``src`` into ``dest``: ``detach`` (a binary detached signature) or ``clearsign``
    (an InRelease); written to a temporary file first, then moved."""
    flag = {"detach": "--detach-sign", "clearsign": "--clearsign"}[mode]
    tmp = dest + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    _checked(run, gpg(key_dir, "--yes", "--local-user", fpr, "--digest-algo", "SHA512", flag,
                      "--output", tmp, src), f"signing {src}")
    os.replace(tmp, dest)
