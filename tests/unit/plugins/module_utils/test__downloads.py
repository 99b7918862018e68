from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.teamllm.stack.plugins.module_utils._downloads import (
    DownloadError,
    bundle_missing,
    bundle_sums,
    entry_problems,
    image_pin,
    mirror_url_problem,
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
    with pytest.raises(DownloadError, match="must be 64 hex digits"):
        resolve("x", {"x": {"path": "x", "url": "u", "sha256": "abc"}})


def test_unrecorded_sha_is_refused_naming_the_entry_and_how_to_record_it():
    with pytest.raises(DownloadError, match=r"llm_downloads.x.sha256 is not recorded yet .*sha256sum FILE.*llm_model_downloads.x.sha256"):
        resolve("x", {"x": {"path": "x", "url": "https://h/x", "sha256": "TO_BE_FILLED"}})


def test_mirror_credentials_never_reach_the_result_or_the_message():
    # SECURITY row 34: the fact download.yml sets from this result is printed at -v
    with pytest.raises(DownloadError) as info:
        resolve("pinned", MANIFEST, "mirror", mirror_url="https://ops:s3cret-pass@mirror.lan/")
    assert "s3cret-pass" not in str(info.value) and "credentials" in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", ""),
        ("https://mirror.lan/teamllm/", ""),
        ("http://mirror.lan/teamllm/", "plain http://"),
        ("https://ops:s3cret-pass@mirror.lan/", "credentials"),
        ("https://ops@mirror.lan/", "credentials"),
        ("ftp://mirror.lan/", "must be an https:// URL"),
        ("/srv/teamllm-bundle", ""),
        ("/srv/teamllm-bundle/", ""),
        ("file:///srv/teamllm-bundle", ""),
        ("file://mirror.lan/srv/teamllm-bundle", "as a path must be absolute"),
        ("/srv/../etc/teamllm", "as a path must be absolute"),
        ("//mirror.lan/x", "as a path must be absolute"),
        ("mirror.lan/teamllm", "must be an https:// URL"),
        (["https://mirror.lan"], "must be a string"),
    ],
)
def test_mirror_url_problem_never_quotes_the_url(url, expected):
    problem = mirror_url_problem(url)
    assert (expected in problem) if expected else problem == ""
    assert "s3cret-pass" not in problem and "mirror.lan" not in problem


@pytest.mark.parametrize(
    ("entry", "needed", "expected"),
    [
        ({"path": "models/m.gguf", "url": "https://h/m.gguf", "sha256": "a" * 64}, True, []),
        ({"path": "models/m.gguf", "url": "", "sha256": "mirror"}, True, []),
        ({"path": "models/m.gguf", "url": "", "sha256": "A" * 64}, True, []),
        ({"version": "1", "image": "ubuntu"}, True, []),  # an image pulled by name
        ({"url": "https://h/apt", "path": "apt/x", "layout": "{deb_arch}", "suites": ["/"]}, True, []),
        ({"path": "models/m.gguf", "sha256": "TO_BE_FILLED"}, False, []),
        ({"path": "models/m.gguf", "sha256": "TO_BE_FILLED"}, True, ["is not recorded yet (TO_BE_FILLED)"]),
        ({"path": "models/m.gguf", "sha256": "abc"}, True, ["must be 64 hex digits"]),
        ({"path": "models/m.gguf"}, True, ["must be 64 hex digits"]),
        ({"sha256": "a" * 64}, True, ["path must be a relative path"]),
        ({"path": "../etc/shadow", "sha256": "a" * 64}, True, ["path must be a relative path"]),
        ({"path": "models/../../x", "sha256": "a" * 64}, True, ["path must be a relative path"]),
        ({"path": "/srv/m.gguf", "sha256": "a" * 64}, True, ["path must be a relative path"]),
        ({"path": "models//m.gguf", "sha256": "a" * 64}, True, ["path must be a relative path"]),
        ({"path": "m.gguf", "url": "http://h/m.gguf", "sha256": "a" * 64}, True, ["url must be an https:// URL"]),
        ({"path": "m.gguf", "url": "https://u:p@h/m.gguf", "sha256": "a" * 64}, True, ["url must not hold credentials"]),
        ("models/m.gguf", True, ["must be a dict"]),
    ],
)
def test_entry_problems(entry, needed, expected):
    problems = entry_problems("m", entry, needed=needed, variable="llm_model_downloads")
    assert len(problems) == len(expected), problems
    for problem, text in zip(problems, expected):
        assert problem.startswith("llm_model_downloads.m") and text in problem


def test_the_collections_own_manifest_is_well_formed():
    path = Path(__file__).resolve().parents[4] / "roles" / "_common" / "defaults" / "main" / "downloads.yml"
    manifest = yaml.safe_load(path.read_text())["llm_downloads_collection"]
    for name, entry in manifest.items():
        assert entry_problems(name, entry, needed=False) == [], name


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


@pytest.mark.parametrize(
    ("mirror", "url"),
    [
        ("/srv/teamllm-bundle/", "file:///srv/teamllm-bundle/tools/pinned-1.2.tar.gz"),
        ("file:///srv/teamllm-bundle", "file:///srv/teamllm-bundle/tools/pinned-1.2.tar.gz"),
        ("https://mirror.lan/b/", "https://mirror.lan/b/tools/pinned-1.2.tar.gz"),
    ],
)
def test_a_local_mirror_is_read_through_file_urls(mirror, url):
    assert resolve("pinned", MANIFEST, "mirror", mirror_url=mirror)["url"] == url


BUNDLE = {"format": "teamllm-bundle/1", "created": "2026-12-02T07:00:00Z",
          "collection": {"name": "teamllm.stack", "version": "1.0.0"},
          "files": [{"path": "llama.cpp/built.tar.gz", "size": 3, "sha256": SHA_B, "kind": "download",
                     "name": "built", "version": "3"},
                    {"path": "tools/pinned-1.2.tar.gz", "size": 3, "sha256": SHA_A, "kind": "download",
                     "name": "pinned", "version": "1.2"},
                    {"path": "apt/bookworm/nginx_1.22.1-9_amd64.deb", "size": 3, "sha256": SHA_A,
                     "kind": "apt", "name": "nginx", "version": "1.22.1-9"}]}


def test_the_signed_manifest_gives_every_sha256():
    sums = bundle_sums(BUNDLE)
    assert resolve("built", MANIFEST, "mirror", mirror_url="/b", sums_text=sums)["sha256"] == SHA_B
    assert resolve("pinned", MANIFEST, "mirror", mirror_url="/b", sums_text=sums)["sha256"] == SHA_A


@pytest.mark.parametrize(
    ("sums", "message"),
    [
        ({}, "tools/pinned-1.2.tar.gz (llm_downloads.pinned) is not listed in the bundle's signed manifest: "
             "rebuild the bundle"),
        ({"tools/pinned-1.2.tar.gz": SHA_B}, f"llm_downloads.pinned.sha256 ({SHA_A}) differs from the bundle's "
                                             f"signed manifest ({SHA_B})"),
    ],
)
def test_an_entry_the_signed_manifest_does_not_vouch_for_is_refused(sums, message):
    with pytest.raises(DownloadError, match=re.escape(message)):
        resolve("pinned", MANIFEST, "mirror", mirror_url="/b", sums_text=sums)


@pytest.mark.parametrize(
    "manifest",
    [None, {"format": "teamllm-bundle/2", "files": []}, {"format": "teamllm-bundle/1"},
     {"format": "teamllm-bundle/1", "files": [{"path": "../etc/passwd", "sha256": SHA_A}]},
     {"format": "teamllm-bundle/1", "files": [{"path": "a", "sha256": "mirror"}]}],
)
def test_a_malformed_bundle_manifest_is_refused(manifest):
    with pytest.raises(DownloadError, match="the bundle's manifest.json"):
        bundle_sums(manifest)


def test_the_preflight_lists_what_the_bundle_lacks():
    needed = {**MANIFEST, "model": {"path": "models/m.gguf", "sha256": SHA_A},
              "pinned": {**MANIFEST["pinned"], "sha256": SHA_B},
              "image": {"image": "x/y", "tag": "1"}}
    assert bundle_missing(needed, BUNDLE, {"bookworm": ["nginx", "restic"], "trixie": ["nginx"]}) == [
        "llm_downloads.model: models/m.gguf is not in the bundle",
        f"llm_downloads.pinned: tools/pinned-1.2.tar.gz in the bundle has sha256 {SHA_A}, the inventory pins {SHA_B}",
        "apt package restic (bookworm) is not in the bundle's apt/bookworm/ repository",
        "apt package nginx (trixie) is not in the bundle's apt/trixie/ repository",
    ]
    assert bundle_missing(MANIFEST, BUNDLE, {"bookworm": ["nginx"]}) == []
