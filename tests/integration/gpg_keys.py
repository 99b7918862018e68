"""OpenPGP signing keys for the offline bundle's tests, made with the real gpg: each in a
GNUPGHOME of its own (a short temporary path: gpg-agent's socket must fit), removed after."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def gpg(home: str, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["gpg", "--homedir", home, "--batch", "--quiet", *args], input=data,
                          check=True, capture_output=True, timeout=60).stdout


@contextlib.contextmanager
def signing_keys(*names: str) -> Iterator[dict[str, tuple[str, Path]]]:
    """{name: (GNUPGHOME, its exported public key)} of a new ed25519 signing key per name."""
    made = {}
    try:
        for name in names:
            home = tempfile.mkdtemp(prefix=f"gpg-{name}-")
            os.chmod(home, 0o700)
            gpg(home, "--passphrase", "", "--quick-gen-key", f"teamllm bundle {name}", "ed25519", "sign", "never")
            pub = Path(home) / "pub.gpg"
            pub.write_bytes(gpg(home, "--export"))
            made[name] = (home, pub)
        yield made
    finally:
        for home, _pub in made.values():
            subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False)
            shutil.rmtree(home, ignore_errors=True)
