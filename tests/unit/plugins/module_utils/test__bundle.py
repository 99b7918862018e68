"""The offline bundle's pure logic: what an inventory needs, the manifest and its check, the
SHA256SUMS, the CycloneDX SBOM, and split/join."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from pathlib import Path

import pytest
import yaml

from ansible_collections.teamllm.stack.plugins.module_utils import _bundle as b

ROOT = Path(__file__).resolve().parents[4]
DOWNLOADS = yaml.safe_load((ROOT / "roles/_common/defaults/main/downloads.yml").read_text())["llm_downloads_collection"]
APT = yaml.safe_load((ROOT / "roles/_common/vars/apt_packages.yml").read_text())["_common_role_apt_packages"]
LAB_MODELS = [{"name": "teamllm-tiny", "engine": "llama_cpp", "quantizations": ["Q8_0"],
               "download": "teamllm_tiny_gguf"}]


def lab(**extra):
    hostvars = {"node1": {"llm_models": LAB_MODELS, **extra}}
    groups = {"all": ["node1"], "llm_nodes": ["node1"], "gateway": ["node1"], "webui": ["node1"],
              "gpu_nodes": []}
    return hostvars, groups


# --- what an inventory needs ---

def test_lab_needs_the_cpu_server_the_model_and_the_webui_wheelhouse():
    hostvars, groups = lab()
    needed = b.needed_downloads(hostvars, groups, DOWNLOADS)
    assert list(needed) == ["llama_server_cpu", "open_webui_wheelhouse", "teamllm_tiny_gguf"]
    assert needed["llama_server_cpu"]["hosts"] == ["node1"]
    assert needed["llama_server_cpu"]["why"] == ["llama_cpp_download"]
    assert needed["teamllm_tiny_gguf"]["why"] == ["llm_models teamllm-tiny"]


def test_gpu_node_gets_the_cuda_builds_repositories_and_their_keys():
    hostvars = {"g1": {"llm_models": [{"name": "m", "engine": "llama_cpp", "download": {"Q4_K_M": "m_q4", "Q8_0": "m_q8"}}]}}
    groups = {"llm_nodes": ["g1"], "gpu_nodes": ["g1"], "gateway": [], "monitoring": ["g1"]}
    downloads = dict(DOWNLOADS, m_q4={"path": "models/m-q4.gguf", "sha256": "a" * 64},
                     m_q8={"path": "models/m-q8.gguf", "sha256": "b" * 64})
    needed = b.needed_downloads(hostvars, groups, downloads)
    for name in ("llama_server_cuda", "m_q4", "m_q8", "cuda_apt", "cuda_apt_key",
                 "nvidia_container_toolkit_apt", "nvidia_container_toolkit_apt_key",
                 "gpu_exporter_wheelhouse", "nvidia_gpu_check_image"):
        assert name in needed, name
    assert "llama_server_cpu" not in needed
    # docker from Debian by default: no docker-ce repository
    assert "docker_ce_apt" not in needed


def test_inventory_values_win_over_the_role_defaults():
    hostvars, groups = lab(llama_cpp_download="llama_server_cuda", open_webui_install_method="container",
                           docker_source="docker-ce")
    groups["gpu_nodes"] = ["node1"]
    needed = b.needed_downloads(hostvars, groups, DOWNLOADS)
    assert "llama_server_cuda" in needed and "open_webui_image" in needed
    assert "open_webui_wheelhouse" not in needed
    assert {"docker_ce_apt", "docker_ce_apt_key"} <= set(needed)


def test_engine_any_and_container_engines_bring_docker_roles():
    hostvars = {"n": {"llm_models": [{"name": "m", "engine": "localai", "download": "teamllm_tiny_gguf"}]}}
    roles = b.host_roles("n", hostvars["n"], {"llm_nodes": ["n"]})
    assert roles == ["_common", "localai", "docker"]
    hostvars = {"n": {"llm_models": [{"name": "m", "download": "teamllm_tiny_gguf"}]}}
    assert set(b.host_roles("n", hostvars["n"], {"llm_nodes": ["n"]})) == {"_common", "vllm", "llama_cpp", "ollama"}


def test_published_placement_decides_the_engines():
    hostvars = {"llm_models": [{"name": "m", "download": "x"}], "teamllm_engines": {"ollama": [{"id": "m"}]}}
    assert b.host_engines(hostvars) == ["ollama"]


def test_unknown_entry_names_host_variable_and_fix():
    hostvars, groups = lab(llama_cpp_download="llama_server_gpu")
    with pytest.raises(b.BundleError) as err:
        b.needed_downloads(hostvars, groups, DOWNLOADS)
    assert "host node1: llama_cpp_download names 'llama_server_gpu', which is not an entry of llm_downloads" in str(err.value)


def test_role_download_defaults_match_the_roles():
    """The defaults ROLE_DOWNLOADS assumes are those the roles' defaults/main.yml name."""
    for role, variables in b.ROLE_DOWNLOADS.items():
        defaults = yaml.safe_load((ROOT / f"roles/{role}/defaults/main.yml").read_text())
        for variable, cpu, gpu, _method in variables:
            value = str(defaults[variable])
            assert cpu in re.findall(r"[a-z0-9_]+", value) and gpu in re.findall(r"[a-z0-9_]+", value), (role, variable)
            assert cpu in DOWNLOADS and gpu in DOWNLOADS
    for variable, value in b._ROLE_VARIABLE_DEFAULTS.items():
        role = next(r for r in b.ROLE_DOWNLOADS.keys() | b.ROLE_APT_REPOSITORIES.keys() if variable.startswith(r + "_"))
        assert yaml.safe_load((ROOT / f"roles/{role}/defaults/main.yml").read_text())[variable] == value


def test_site_roles_are_the_roles_the_playbooks_apply():
    text = "".join(p.read_text() for p in (ROOT / "playbooks").glob("*.yml"))
    for role, where, _ in b.SITE_ROLES:
        assert f"teamllm.stack.{role}" in text, role
        assert (ROOT / "roles" / role).is_dir()
    # and the other way: every role a play of site.yml applies is known here (the engines'
    # roles come from the placement)
    site = yaml.safe_load((ROOT / "playbooks/site.yml").read_text())
    applied = set()
    for item in site:
        for play in yaml.safe_load((ROOT / "playbooks" / item["ansible.builtin.import_playbook"]).read_text()):
            for entry in play.get("roles") or ():
                applied.add((entry["role"] if isinstance(entry, dict) else entry).rsplit(".", 1)[-1])
    known = {role for role, _where, _condition in b.SITE_ROLES} | set(b.ROLE_DOWNLOADS)
    assert applied - known - {"_common"} == set()


def test_apt_packages_by_role_and_release():
    debian, third = b.apt_packages(APT, ["_common", "gateway", "llama_cpp", "docker", "grafana"], "bookworm")
    assert "nginx" in debian and "nftables" in debian and "docker.io" in debian
    assert "docker-cli" not in debian
    assert third == {"grafana_apt": ["grafana"]}
    debian, _ = b.apt_packages(APT, ["docker"], "trixie")
    assert "docker-cli" in debian


# --- manifest ---

def make_tree(root: Path):
    (root / "models").mkdir(parents=True)
    (root / "models/tiny.gguf").write_bytes(b"GGUF" + bytes(100))
    (root / "apt/bookworm").mkdir(parents=True)
    (root / "apt/bookworm/nginx_1.22.1-9+deb12u2_amd64.deb").write_bytes(b"deb")
    (root / "apt/bookworm/libfoo_1%3a2.0-1_all.deb").write_bytes(b"deb2")
    (root / "apt/bookworm/Packages").write_text("Package: nginx\n")
    (root / "manifest.json.sig").write_bytes(b"sig")
    downloads = {"tiny": {"path": "models/tiny.gguf", "version": "1", "sha256": "mirror"},
                 "wheels": {"path": "w.tar.gz", "version": "2", "pypi": "Open-WebUI==0.12.4", "sha256": "mirror"}}
    return downloads


def test_manifest_lists_every_file_with_kind_size_and_sha(tmp_path):
    downloads = make_tree(tmp_path)
    manifest = b.write_bundle_index(str(tmp_path), downloads, "0.1.0", "2026-12-02T00:00:00Z")
    paths = [f["path"] for f in manifest["files"]]
    assert paths == sorted(paths)
    assert set(paths) == {"models/tiny.gguf", "apt/bookworm/nginx_1.22.1-9+deb12u2_amd64.deb",
                          "apt/bookworm/libfoo_1%3a2.0-1_all.deb", "apt/bookworm/Packages", "SHA256SUMS", "bom.cdx.json"}
    by_path = {f["path"]: f for f in manifest["files"]}
    assert by_path["models/tiny.gguf"] == {
        "path": "models/tiny.gguf", "size": 104, "kind": "download", "name": "tiny", "version": "1",
        "sha256": hashlib.sha256(b"GGUF" + bytes(100)).hexdigest()}
    assert by_path["apt/bookworm/libfoo_1%3a2.0-1_all.deb"]["version"] == "1:2.0-1"
    assert by_path["apt/bookworm/Packages"]["kind"] == "apt-index"
    assert by_path["SHA256SUMS"]["kind"] == "index"
    assert manifest["format"] == "teamllm-bundle/1"
    assert manifest["collection"] == {"name": "teamllm.stack", "version": "0.1.0"}
    assert b.verify_tree(str(tmp_path), manifest) == []
    sums = (tmp_path / "SHA256SUMS").read_text()
    assert f"{by_path['models/tiny.gguf']['sha256']}  models/tiny.gguf\n" in sums
    assert "SHA256SUMS" not in sums


def test_unchanged_bundle_keeps_its_manifest(tmp_path):
    downloads = make_tree(tmp_path)
    first = b.write_bundle_index(str(tmp_path), downloads, "0.1.0", "2026-12-02T00:00:00Z")
    again = b.write_bundle_index(str(tmp_path), downloads, "0.1.0", "2026-12-03T00:00:00Z", previous=first)
    assert again is first
    (tmp_path / "models/new.gguf").write_bytes(b"x")
    third = b.write_bundle_index(str(tmp_path), downloads, "0.1.0", "2026-12-03T00:00:00Z", previous=first)
    assert third["created"] == "2026-12-03T00:00:00Z"
    assert "models/new.gguf" in [f["path"] for f in third["files"]]


def test_canonical_bytes_are_stable_and_round_trip(tmp_path):
    manifest = b.write_bundle_index(str(tmp_path), make_tree(tmp_path), "0.1.0", "t")
    data = b.manifest_bytes(manifest)
    assert data == b.manifest_bytes(json.loads(data))
    assert data.endswith(b"}\n")
    assert b.load_manifest(data) == manifest


@pytest.mark.parametrize(("change", "expected"), [
    (lambda r: (r / "models/tiny.gguf").write_bytes(b"GGUF" + bytes(99) + b"\x01"), "models/tiny.gguf: sha256 differs"),
    (lambda r: (r / "models/tiny.gguf").write_bytes(b"short"), "models/tiny.gguf: size 5, the manifest says 104"),
    (lambda r: (r / "models/tiny.gguf").unlink(), "models/tiny.gguf: missing"),
    (lambda r: (r / "models/extra.bin").write_bytes(b"x"), "models/extra.bin: not listed in the manifest"),
    (lambda r: os.symlink("/etc/passwd", r / "models/link"), "models/link: not a regular file"),
])
def test_verify_tree_finds_tampering(tmp_path, change, expected):
    manifest = b.write_bundle_index(str(tmp_path), make_tree(tmp_path), "0.1.0", "t")
    change(tmp_path)
    problems = b.verify_tree(str(tmp_path), manifest)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("manifest", "expected"), [
    ({"format": "other", "files": []}, "format is 'other'"),
    ({"format": "teamllm-bundle/1", "files": [{"path": "../etc/passwd", "size": 1, "sha256": "a" * 64, "kind": "download"}]},
     "no safe relative path"),
    ({"format": "teamllm-bundle/1", "files": [{"path": "a", "size": 1, "sha256": "zz", "kind": "download"}]}, "no sha256"),
    ({"format": "teamllm-bundle/1", "files": [{"path": "a", "size": 1, "sha256": "a" * 64, "kind": "exe"}]}, "kind 'exe'"),
])
def test_manifest_problems(manifest, expected):
    assert any(expected in p for p in b.manifest_problems(manifest))
    with pytest.raises(b.BundleError):
        b.load_manifest(json.dumps(manifest))


# --- SBOM ---

CDX_TYPES = {"application", "framework", "library", "container", "platform", "operating-system", "device",
             "device-driver", "firmware", "file", "machine-learning-model", "data"}


def test_sbom_has_cyclonedx_1_5_shape(tmp_path):
    downloads = make_tree(tmp_path)
    (tmp_path / "w.tar.gz").write_bytes(b"wheels")
    manifest = b.write_bundle_index(str(tmp_path), downloads, "0.1.0", "2026-12-02T00:00:00Z")
    doc = json.loads((tmp_path / "bom.cdx.json").read_text())
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5" and doc["version"] == 1
    assert re.match(r"^urn:uuid:[0-9a-f-]{36}$", doc["serialNumber"])
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs))
    listed = {f["path"] for f in manifest["files"] if f["kind"] in ("download", "apt")}
    assert set(refs) == listed
    for comp in doc["components"]:
        assert comp["type"] in CDX_TYPES
        assert re.match(r"^pkg:[a-z]+/", comp["purl"])
        assert comp["hashes"][0]["alg"] == "SHA-256" and re.match(r"^[0-9a-f]{64}$", comp["hashes"][0]["content"])
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    assert by_ref["apt/bookworm/nginx_1.22.1-9+deb12u2_amd64.deb"]["purl"] == \
        "pkg:deb/debian/nginx@1.22.1-9%2Bdeb12u2?arch=amd64&distro=bookworm"
    assert by_ref["w.tar.gz"]["purl"] == "pkg:pypi/open-webui@0.12.4"
    assert by_ref["models/tiny.gguf"]["type"] == "machine-learning-model"
    assert by_ref["models/tiny.gguf"]["purl"] == "pkg:generic/tiny@1"


# --- split / join ---

@pytest.mark.parametrize(("total", "size", "plan"), [
    (10, 4, [(0, 4), (4, 4), (8, 2)]), (8, 4, [(0, 4), (4, 4)]), (3, 4, [(0, 3)]), (0, 4, [(0, 0)])])
def test_part_plan(total, size, plan):
    assert b.part_plan(total, size) == plan


@pytest.mark.parametrize(("text", "size"), [("4GiB", 4 * 1024**3), ("700M", 700 * 10**6), ("1000", 1000),
                                            (123, 123), ("2 MiB", 2 * 1024**2)])
def test_parse_size(text, size):
    assert b.parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "four", "0", "-1G", True])
def test_parse_size_refuses(bad):
    with pytest.raises(b.BundleError):
        b.parse_size(bad)


def test_split_join_round_trip_and_corrupt_part_refused(tmp_path):
    bundle = tmp_path / "bundle"
    make_tree(bundle)
    tar = tmp_path / "b.tar"
    b.make_tar(str(bundle), str(tar), "teamllm-bundle")
    tar2 = tmp_path / "b2.tar"
    b.make_tar(str(bundle), str(tar2), "teamllm-bundle")
    assert tar.read_bytes() == tar2.read_bytes()  # reproducible
    parts = tmp_path / "parts"
    parts.mkdir()
    doc = b.split_file(str(tar), 1000, str(parts), "teamllm-bundle")
    assert len(doc["parts"]) == -(-tar.stat().st_size // 1000)
    joined = tmp_path / "joined.tar"
    b.join_parts(str(parts / "teamllm-bundle.parts.json"), str(joined))
    assert joined.read_bytes() == tar.read_bytes()
    with tarfile.open(joined) as t:
        assert "teamllm-bundle/models/tiny.gguf" in t.getnames()
    # a corrupted part is refused, and nothing is left at the destination
    part = parts / doc["parts"][1]["path"]
    data = bytearray(part.read_bytes())
    data[0] ^= 1
    part.write_bytes(bytes(data))
    joined.unlink()
    with pytest.raises(b.BundleError, match="teamllm-bundle.tar.part-0002: sha256 differs"):
        b.join_parts(str(parts / "teamllm-bundle.parts.json"), str(joined))
    assert not joined.exists()
    part.unlink()
    with pytest.raises(b.BundleError, match="part-0002: missing"):
        b.join_parts(str(parts / "teamllm-bundle.parts.json"), str(joined))


def test_join_refuses_parts_json_whose_whole_does_not_match(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"abcdef")
    doc = b.split_file(str(tmp_path / "x.tar"), 4, str(tmp_path), "x")
    doc["sha256"] = "0" * 64
    (tmp_path / "x.parts.json").write_bytes(b.manifest_bytes(doc))
    with pytest.raises(b.BundleError, match="differ from the whole tar"):
        b.join_parts(str(tmp_path / "x.parts.json"), str(tmp_path / "out.tar"))
    assert not (tmp_path / "out.tar").exists() and not (tmp_path / "out.tar.joining").exists()


def test_inventory_apt_packages_follow_each_hosts_choices():
    hostvars, groups = lab()
    debian, third = b.inventory_apt_packages(APT, hostvars, groups, "bookworm")
    assert {"nginx", "libnginx-mod-http-lua", "nftables", "python3-venv", "mtail"} <= set(debian)
    assert "docker.io" not in debian and third == {}  # llama.cpp needs no Docker
    hostvars["node1"]["docker_source"] = "docker-ce"
    groups["gpu_nodes"] = ["node1"]
    debian, third = b.inventory_apt_packages(APT, hostvars, groups, "bookworm")
    assert "docker.io" not in debian and "docker-ce" in third["docker_ce_apt"]
    assert "cuda-toolkit" in third["cuda_apt"] and "nvidia-kernel-dkms" in debian


def test_inventory_instances_decide_the_engines_and_host_keys_cover_them():
    assert b.host_engines({"ollama_instances": [{"name": "x"}], "llm_models": LAB_MODELS}) == ["ollama"]
    keys = b.host_keys()
    assert {"llm_models", "llama_cpp_download", "vllm_install_method", "docker_source", "ollama_instances"} <= set(keys)


@pytest.mark.parametrize(("name", "expected"), [
    ("grafana_apt", "the bundle carries Debian's packages only"),
    ("nvidia_gpu_check_image", "has no file"),
    ("ollama", "sha256 is not recorded (TO_BE_FILLED)"),
    ("teamllm_tiny_gguf", ""),
    ("llama_server_cpu", ""),
])
def test_carry_problem(name, expected):
    problem = b.carry_problem(name, DOWNLOADS[name], ["node1"])
    assert (expected in problem and problem.startswith("host node1 needs")) if expected else problem == ""


def test_bundle_sources_take_mirror_sums_and_ollama_blobs():
    needed = {k: DOWNLOADS[k] for k in ("llama_server_cpu", "teamllm_tiny_gguf", "ollama_teamllm_tiny")}
    blob = "ollama/models/blobs/sha256-" + "c" * 64
    sums = {"llama.cpp/llama-server-0.3.36-linux-x86_64-cpu.tar.gz": "a" * 64, blob: "c" * 64,
            DOWNLOADS["ollama_teamllm_tiny"]["path"]: "d" * 64, "other/file": "e" * 64}
    files = b.bundle_sources(needed, sums)
    by_path = {f["path"]: f for f in files}
    assert set(by_path) == {"llama.cpp/llama-server-0.3.36-linux-x86_64-cpu.tar.gz", "models/teamllm-tiny-q8_0.gguf",
                            blob, DOWNLOADS["ollama_teamllm_tiny"]["path"]}
    assert by_path["models/teamllm-tiny-q8_0.gguf"]["sha256"] == DOWNLOADS["teamllm_tiny_gguf"]["sha256"]
    assert by_path[blob]["name"] == "ollama_teamllm_tiny"
    del sums["llama.cpp/llama-server-0.3.36-linux-x86_64-cpu.tar.gz"]
    with pytest.raises(b.BundleError, match="llama_server_cpu: .* is not in the mirror's SHA256SUMS"):
        b.bundle_sources(needed, sums)


def test_stray_files_are_those_no_choice_explains(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "apt/trixie").mkdir()
    (tmp_path / "apt/trixie/old_1_all.deb").write_bytes(b"x")
    (tmp_path / "SHA256SUMS").write_text("")
    assert b.stray_files(str(tmp_path), ["models/tiny.gguf"], ["bookworm"]) == ["apt/trixie/old_1_all.deb"]
    assert b.stray_files(str(tmp_path), [], ["bookworm", "trixie"]) == ["models/tiny.gguf"]
