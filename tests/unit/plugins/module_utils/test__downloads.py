from __future__ import annotations

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._downloads import (
    DownloadError,
    parse_sha256sums,
    resolve,
)

SHA_A = "a" * 64
SHA_B = "b" * 64
MANIFEST = {
    "pinned": {"version": "1.2", "path": "tools/pinned-1.2.tar.gz",
               "url": "https://example.org/pinned-1.2.tar.gz", "sha256": SHA_A},
    "built": {"version": "3", "path": "llama.cpp/built.tar.gz", "url": "", "sha256": "mirror"},
}
SUMS = f"{SHA_B}  llama.cpp/built.tar.gz\n{SHA_A} *./tools/pinned-1.2.tar.gz\n"


@pytest.mark.parametrize(
    ("source", "kwargs", "field", "expected"),
    [
        ("upstream", {}, "url", "https://example.org/pinned-1.2.tar.gz"),
        ("mirror", {"mirror_url": "http://mirror.lan/teamllm/"}, "url",
         "http://mirror.lan/teamllm/tools/pinned-1.2.tar.gz"),
        ("controller", {"artifacts_dir": "/srv/mirror/"}, "src", "/srv/mirror/tools/pinned-1.2.tar.gz"),
    ],
)
def test_resolve_sources(source, kwargs, field, expected):
    got = resolve("pinned", MANIFEST, source, **kwargs)
    assert got[field] == expected
    assert got["sha256"] == SHA_A
    assert got["filename"] == "pinned-1.2.tar.gz"


def test_mirror_built_entry_takes_its_sum_from_sha256sums():
    got = resolve("built", MANIFEST, "controller", artifacts_dir="/m", sums_text=SUMS)
    assert got["sha256"] == SHA_B


@pytest.mark.parametrize(
    ("name", "source", "kwargs", "message"),
    [
        ("built", "controller", {"artifacts_dir": "/m"}, "SHA256SUMS"),
        ("built", "controller", {"artifacts_dir": "/m", "sums_text": f"{SHA_A}  other\n"}, "not listed"),
        ("built", "upstream", {"sums_text": SUMS}, "no upstream url"),
        ("pinned", "mirror", {}, "llm_mirror_url is empty"),
        ("pinned", "controller", {}, "llm_artifacts_dir is empty"),
        ("pinned", "ftp", {}, "llm_artifact_source"),
        ("missing", "upstream", {}, "no entry 'missing'"),
    ],
)
def test_resolve_refuses_with_a_fix(name, source, kwargs, message):
    with pytest.raises(DownloadError, match=message):
        resolve(name, MANIFEST, source, **kwargs)


def test_bad_sha_in_manifest_is_refused():
    with pytest.raises(DownloadError, match="not a sha256"):
        resolve("x", {"x": {"path": "x", "url": "u", "sha256": "abc"}})


def test_parse_sha256sums_rejects_garbage():
    assert parse_sha256sums(SUMS)["tools/pinned-1.2.tar.gz"] == SHA_A
    with pytest.raises(DownloadError, match="line 1"):
        parse_sha256sums("nonsense line\n")
