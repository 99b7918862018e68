from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.teamllm.stack.plugins.module_utils._downloads import (
    DownloadError,
    image_pin,
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


DIGEST = "sha256:" + "ab" * 32
IMAGES = {
    "pinned": {"image": "localai/localai", "tag": "v3.9.0", "digest": DIGEST},
    "unpinned": {"image": "localai/localai", "tag": "v3.9.0", "digest": ""},
    "bad_digest": {"image": "localai/localai", "tag": "v3.9.0", "digest": "sha256:ABC"},
    "tarball": {"path": "images/x.tar", "sha256": "mirror"},
}


def test_a_pinned_image_is_pulled_by_digest():
    assert image_pin("pinned", IMAGES) == {"ref": f"localai/localai@{DIGEST}", "pinned": True, "problem": ""}


def test_an_unpinned_image_is_refused_naming_the_entry_and_the_fix():
    pin = image_pin("unpinned", IMAGES, host="node1")
    assert pin["ref"] == "localai/localai:v3.9.0" and not pin["pinned"]
    assert pin["problem"].startswith("node1: llm_downloads.unpinned (localai/localai:v3.9.0) records no digest")
    assert "docker buildx imagetools inspect localai/localai:v3.9.0" in pin["problem"]
    assert "llm_allow_unpinned: [unpinned]" in pin["problem"]


def test_an_unpinned_image_is_pulled_by_tag_only_when_the_inventory_names_it():
    assert image_pin("unpinned", IMAGES, ["unpinned"])["problem"] == ""
    assert image_pin("unpinned", IMAGES, ["pinned", "localai_image"])["problem"] != ""


@pytest.mark.parametrize(("name", "message"), [
    ("bad_digest", "digest is 'sha256:ABC', not sha256:<64 lowercase hex digits>"),
    ("tarball", "is not a container image entry"),
    ("missing", "llm_downloads.missing is not a container image entry"),
])
def test_malformed_image_entries_are_refused(name, message):
    assert message in image_pin(name, IMAGES, [name])["problem"]


def test_the_collection_images_are_refused_until_their_digest_is_recorded():
    """No registry is reachable where the collection is built: every image entry that records
    no digest yet must be refused by default (and the toolkit's check image is one of them)."""
    manifest = yaml.safe_load((Path(__file__).resolve().parents[4] / "roles/_common/defaults/main/downloads.yml")
                              .read_text())["llm_downloads_collection"]
    images = sorted(n for n, e in manifest.items() if "image" in e)
    assert {"localai_image", "localai_image_cuda12", "open_webui_image", "vllm_image",
            "nvidia_gpu_check_image"} <= set(images)
    for name in images:
        pin = image_pin(name, manifest)
        assert pin["pinned"] or pin["problem"], name
