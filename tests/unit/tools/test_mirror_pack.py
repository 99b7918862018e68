"""The one reproducible tarball packing of tools/ (mirror_build.pack), which every mirror step
uses: the same inputs give the same bytes whatever the files' times, owners and the umask."""

import gzip
import hashlib
import importlib.util
import os
import sys
import tarfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[3] / "tools"


def _load(name: str, path: Path):
    sys.path.insert(0, str(TOOLS))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(TOOLS))


mb = _load("mirror_build", TOOLS / "mirror_build.py")


def _files(root: Path, mtime: int, mode: int) -> dict:
    (root / "bin").mkdir(parents=True, exist_ok=True)
    tool = root / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\necho hi\n")
    tool.chmod(mode)
    os.utime(tool, (mtime, mtime))
    return {"bin/tool": tool, "share/doc/README": b"readme\n", "LICENSE": b"license\n"}


def test_the_same_inputs_give_the_same_bytes(tmp_path):
    one, two = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    mb.pack(one, _files(tmp_path / "a", 1_000_000, 0o775))
    old = os.umask(0o077)
    try:
        mb.pack(two, _files(tmp_path / "b", 2_000_000, 0o700))
    finally:
        os.umask(old)
    assert hashlib.sha256(one.read_bytes()).digest() == hashlib.sha256(two.read_bytes()).digest()


def test_members_sorted_with_their_directories_owned_by_root_at_time_zero(tmp_path):
    out = tmp_path / "x.tar.gz"
    mb.pack(out, _files(tmp_path / "a", 1_000_000, 0o755), root="pkg", executables={"share/doc/README"})
    with tarfile.open(out) as tar:
        members = tar.getmembers()
    assert [(m.name, m.type, oct(m.mode)) for m in members] == [
        ("pkg", tarfile.DIRTYPE, "0o755"),
        ("pkg/LICENSE", tarfile.REGTYPE, "0o644"),
        ("pkg/bin", tarfile.DIRTYPE, "0o755"),
        ("pkg/bin/tool", tarfile.REGTYPE, "0o755"),
        ("pkg/share", tarfile.DIRTYPE, "0o755"),
        ("pkg/share/doc", tarfile.DIRTYPE, "0o755"),
        ("pkg/share/doc/README", tarfile.REGTYPE, "0o755"),
    ]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "root", "root", 0)}


def test_the_gzip_header_holds_no_name_and_no_time(tmp_path):
    out = tmp_path / "named-after-this-file.tar.gz"
    mb.pack(out, {"a": b"a"}, level=1)
    header = out.read_bytes()[:10]
    assert header[3] & 0x08 == 0  # FNAME flag unset
    assert header[4:8] == b"\0\0\0\0"  # MTIME 0
    assert gzip.decompress(out.read_bytes())


def test_no_step_packs_a_tarball_of_its_own():
    """tools/ has one packing: no step builds tar members or gzip streams itself."""
    for path in sorted((TOOLS / "mirror_steps").glob("*.py")):
        text = path.read_text()
        assert "tarfile.TarInfo" not in text and "GzipFile" not in text, path.name
