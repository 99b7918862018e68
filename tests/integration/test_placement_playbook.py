"""playbooks/placement.yml, run for real through ansible-playbook on the controller.

The hosts below do not exist (TEST-NET addresses over SSH) and declare their GPUs, so the
placement needs no host: a play that tried to reach one would fail with "unreachable", which
the tests reject. A model that does not fit, a model without weights for its engine, or a
gateway that cannot reach an engine must fail the run, naming it, before any host is
contacted; backend keys are published to the gateway and never printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GPU_8GB = [{"name": "NVIDIA GeForce RTX 4060", "memory_gb": 8}]
GPU_24GB = [{"name": "NVIDIA GeForce RTX 3090", "memory_gb": 24}]


def run_placement(tmp_path: Path, group_vars: dict, nodes: dict, extra_play: str = ""):
    inventory = {"all": {"children": {"llm_nodes": {"hosts": nodes},
                                      "gateway": {"hosts": {next(iter(nodes)): {}}}},
                         "vars": {"ansible_host": "192.0.2.1", "ansible_connection": "ssh",
                                  "ansible_ssh_common_args": "-o ConnectTimeout=2"}}}
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    playbook = REPO / "playbooks" / "placement.yml"
    if extra_play:
        playbook = tmp_path / "play.yml"
        playbook.write_text(
            f"- ansible.builtin.import_playbook: {REPO / 'playbooks' / 'placement.yml'}\n{extra_play}"
        )
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(playbook)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _untouched(out: str) -> bool:
    return "UNREACHABLE" not in out and "unreachable=1" not in out


def test_model_too_big_fails_naming_it_and_the_shortfall(tmp_path):
    models = [{"name": "llama-3.1-70b", "engine": "llama_cpp", "quantizations": ["Q4_K_M"],
               "download": "teamllm_tiny_gguf"}]
    rc, out = run_placement(tmp_path, {"llm_models": models},
                            {"node1": {"llm_gpus_declared": GPU_8GB},
                             "node2": {"llm_gpus_declared": GPU_8GB}})
    assert rc != 0
    assert "models do not fit" in out, out[-3000:]
    assert "model llama-3.1-70b does not fit" in out
    assert "GiB short" in out
    assert _untouched(out), out[-3000:]


def test_vllm_model_without_download_fails_by_name(tmp_path):
    models = [{"name": "qwen2.5-7b", "engine": "vllm", "quantizations": ["FP16"]}]
    rc, out = run_placement(tmp_path, {"llm_models": models},
                            {"node1": {"llm_gpus_declared": GPU_24GB}})
    assert rc != 0
    assert "model qwen2.5-7b is placed as vllm FP16, but its llm_models item has no download" in out, out[-3000:]
    assert _untouched(out), out[-3000:]


def test_ollama_model_without_an_offline_copy_fails_by_name(tmp_path):
    models = [{"name": "llama-3.1-8b", "engine": "ollama", "quantizations": ["Q4_K_M"],
               "ollama": {"pull": "llama3.1:8b"}}]
    rc, out = run_placement(tmp_path, {"llm_models": models, "llm_artifact_source": "controller"},
                            {"node1": {"llm_gpus_declared": GPU_24GB}})
    assert rc != 0
    assert "ollama model llama-3.1-8b has no offline copy" in out, out[-3000:]
    assert _untouched(out), out[-3000:]


def test_llama_cpp_model_without_download_fails(tmp_path):
    models = [{"name": "llama-3.1-8b", "engine": "llama_cpp", "quantizations": ["Q4_K_M"]}]
    rc, out = run_placement(tmp_path, {"llm_models": models},
                            {"node1": {"llm_gpus_declared": GPU_24GB}})
    assert rc != 0
    assert "model llama-3.1-8b is placed as llama_cpp Q4_K_M" in out, out[-3000:]
    assert "has no download for Q4_K_M" in out
    assert _untouched(out), out[-3000:]


SHOW = """
- name: Show what was published
  hosts: all
  gather_facts: false
  tasks:
    - name: Print the facts as JSON
      ansible.builtin.debug:
        msg: "FACTS {{ {'engines': teamllm_engines | default(none),
                        'gateway': teamllm_gateway | default(none)} | to_json }} END"
"""


def _facts(out: str, host: str) -> dict:
    # The host's own result of the "Print the facts" task: from its "ok: [host] =>" up to the
    # next result or task header (hosts print in any order).
    pattern = re.compile(r"ok: \[" + re.escape(host) + r"\] =>(.*?)(?=\n\S|ok: \[|TASK \[|PLAY RECAP|\Z)", re.S)
    texts = [m.group(1) for m in pattern.finditer(out) if "FACTS " in m.group(1)]
    assert texts, out[-3000:]
    payload = texts[-1].split("FACTS ", 1)[1].split(" END", 1)[0]
    payload = re.sub(r"\n\s+", " ", payload)
    return json.loads(payload.encode().decode("unicode_escape"))


def test_fitting_models_publish_placement_and_routes_without_touching_hosts(tmp_path):
    models = [{"name": "llama-3.1-8b", "alias": "chat", "engine": "llama_cpp", "host": "node1",
               "quantizations": ["Q4_K_M"], "context": 4096, "parallel": 2,
               "download": {"Q4_K_M": "teamllm_tiny_gguf"}}]
    nodes = {"node1": {"llm_gpus_declared": [{**GPU_24GB[0], "count": 2}]},
             "node2": {"llm_gpus_declared": GPU_8GB}}
    rc, out = run_placement(tmp_path, {"llm_models": models}, nodes, extra_play=SHOW)
    assert rc == 0, out[-3000:]
    assert _untouched(out), out[-3000:]
    node1 = _facts(out, "node1")
    assert list(node1["engines"]) == ["llama_cpp"]
    (mapped,) = node1["engines"]["llama_cpp"]
    assert mapped["name"] == "chat-0" and mapped["port"] == 8100
    assert node1["gateway"] == {"routes": {"chat": ["127.0.0.1:8100"]}, "backend_keys": {},
                                "backends": {"node1": ["127.0.0.1:8100"]}}
    assert mapped["alias"] == "chat" and mapped["model"] == "teamllm_tiny_gguf"
    assert mapped["context"] == 8192 and mapped["parallel"] == 2 and mapped["gpu_layers"] == 999
    assert mapped["extra_env"]["CUDA_VISIBLE_DEVICES"] in ("0", "1")
    node2 = _facts(out, "node2")
    assert node2["engines"] == {} and node2["gateway"] is None
    # the plan is printed per node and GPU before anything else happens
    assert re.search(r"node1\s+GPU \d\s+NVIDIA GeForce RTX 3090.*chat-0 \(llama_cpp Q4_K_M :8100\)", out), out[-3000:]


def test_no_models_places_nothing(tmp_path):
    rc, out = run_placement(tmp_path, {"llm_models": []}, {"node1": {"llm_gpus_declared": GPU_8GB}},
                            extra_play=SHOW)
    assert rc == 0, out[-3000:]
    assert _untouched(out)
    assert _facts(out, "node1") == {"engines": None, "gateway": None}


def test_route_to_an_engine_on_loopback_of_another_host_fails(tmp_path):
    models = [{"name": "llama-3.1-8b", "engine": "llama_cpp", "host": "node2",
               "quantizations": ["Q4_K_M"], "download": "teamllm_tiny_gguf"}]
    nodes = {"node1": {"llm_gpus_declared": GPU_8GB}, "node2": {"llm_gpus_declared": GPU_8GB}}
    rc, out = run_placement(tmp_path, {"llm_models": models}, nodes)
    assert rc != 0
    assert "gateway node1 cannot reach llama-3.1-8b on node2: its engines listen on 127.0.0.1" in out
    assert _untouched(out), out[-3000:]


def test_backend_keys_reach_the_gateway_and_never_the_output(tmp_path):
    secret = "vllm-backend-" + "k" * 40
    models = [{"name": "llama-3.1-8b", "alias": "chat", "engine": "vllm", "quantizations": ["BF16"],
               "context": 4096, "download": "teamllm_tiny_gguf", "host": "node2"}]
    nodes = {"node1": {"llm_gpus_declared": GPU_8GB},
             "node2": {"llm_gpus_declared": GPU_24GB, "llm_engine_bind_address": "10.1.0.2",
                       "vllm_api_key": secret}}
    show = SHOW.replace("hosts: all", "hosts: node1").replace(
        "'gateway': teamllm_gateway | default(none)",
        "'gateway': teamllm_gateway.routes, 'key_ok': teamllm_gateway.backend_keys.chat == vllm_api_key_expected")
    (tmp_path / "vars.yml").write_text(yaml.safe_dump({"vllm_api_key_expected": secret}))
    show = show.replace("  gather_facts: false", "  gather_facts: false\n  vars_files: [" + str(tmp_path / "vars.yml") + "]", 1)
    rc, out = run_placement(tmp_path, {"llm_models": models}, nodes, extra_play=show)
    assert rc == 0, out[-3000:]
    facts = _facts(out, "node1")
    assert facts["gateway"] == {"chat": ["10.1.0.2:8100"]} and facts["key_ok"] is True
    assert secret not in out
