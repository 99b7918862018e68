"""The mirror's SHA256SUMS keeps the entries of builds that ran at the same time."""

import importlib.util
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[3] / "tools"


def _mirror_build():
    spec = importlib.util.spec_from_file_location("mirror_build", TOOLS / "mirror_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_builds_at_once_keep_each_others_entries(tmp_path):
    mb = _mirror_build()
    first, second = mb.Mirror(tmp_path), mb.Mirror(tmp_path)  # both read an empty SHA256SUMS
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    first.put("x/a.bin", a, "k1")
    second.put("y/b.bin", b, "k2")
    lines = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == ["x/a.bin", "y/b.bin"]
    assert mb.Mirror(tmp_path).fresh("x/a.bin", "k1") and mb.Mirror(tmp_path).fresh("y/b.bin", "k2")


def test_a_long_build_does_not_put_back_an_entry_another_build_renewed(tmp_path):
    mb = _mirror_build()
    old, new = tmp_path / "old.bin", tmp_path / "new.bin"
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    mb.Mirror(tmp_path).put("x/a.bin", old, "k1")
    compile_ = mb.Mirror(tmp_path)  # reads SHA256SUMS, then compiles for a while
    mb.Mirror(tmp_path).put("x/a.bin", new, "k2")  # meanwhile another build renews x/a.bin
    compile_.put("y/b.bin", old, "k3")
    assert mb.Mirror(tmp_path).fresh("x/a.bin", "k2")
