"""Prometheus's targets from the inventory and the published plan (module_utils/_monitoring):
every exporter, every engine instance of a real deployment plan, the addresses the monitoring
host reaches them on, keyed engines, and the GPU exporter's estimates."""

from __future__ import annotations

import pytest
from placement_fixtures import gpus as _gpus
from placement_fixtures import hosts_input

from ansible_collections.teamllm.stack.plugins.module_utils import _engines, _monitoring, _placement
from ansible_collections.teamllm.stack.plugins.module_utils._engines import deployment

DOWNLOADS = {"teamllm_tiny_gguf": {}, "llama_8b_q4": {}, "llama_8b_hf": {}, "tiny_hf": {}}
TINY = {"name": "teamllm-tiny", "engine": "llama_cpp", "quantizations": ["Q8_0"],
        "context": 1024, "parallel": 2, "download": "teamllm_tiny_gguf"}
LLAMA = {"name": "llama-3.1-8b", "engine": "llama_cpp", "quantizations": ["Q4_K_M"],
         "context": 4096, "download": "llama_8b_q4"}
QWEN = {"name": "qwen2.5-7b", "alias": "qwen", "engine": "ollama", "quantizations": ["Q4_K_M"],
        "context": 4096, "ollama": "qwen2.5:7b-instruct-q4_K_M"}
MISTRAL = {"name": "mistral-7b", "engine": "ollama", "quantizations": ["Q4_K_M"], "context": 4096,
           "ollama": "mistral:7b-instruct-q4_K_M"}


def _plan(models, hosts, binds):
    placed = _placement.plan(_engines.placement_models(models), hosts_input(hosts))
    nodes = {h: {"binds": {"default": b}} for h, b in binds.items()}
    return deployment.deployment_plan(placed["placement"], models, DOWNLOADS, nodes=nodes,
                                      gateways=["gw"])


def _job(result, name):
    jobs = [j for j in result["scrape_configs"] if j["job_name"] == name]
    assert len(jobs) == 1, [j["job_name"] for j in result["scrape_configs"]]
    return jobs[0]


def _targets(job):
    return {c["targets"][0]: c["labels"] for c in job["static_configs"]}


@pytest.fixture
def team():
    """gw: gateway + monitoring; n1 (GPU node, engines on 10.0.0.5): llama.cpp and two Ollama
    models; the plan's own ports and instance lists, as placement.yml publishes them."""
    plan = _plan([LLAMA, QWEN, MISTRAL], {"n1": {"gpus": _gpus(24), "address": "10.0.0.5"}},
                 {"n1": "10.0.0.5"})
    hostvars = {
        "gw": {"llm_gateway_address": "10.0.0.2", "ansible_host": "10.0.0.2"},
        "n1": {"llm_engine_bind_address": "10.0.0.5", "ansible_host": "10.0.0.5",
               "teamllm_engines": plan["engines"]["n1"],
               "teamllm_placement": plan["placement"]["n1"]},
    }
    groups = {"all": ["gw", "n1"], "llm_nodes": ["n1"], "gpu_nodes": ["n1"], "gateway": ["gw"],
              "monitoring": ["gw"]}
    return plan, hostvars, groups


def test_every_exporter_and_instance_of_the_plan_is_a_target_on_the_address_it_listens_on(team):
    plan, hostvars, groups = team
    result = _monitoring.scrape_configs(hostvars, groups, "gw")
    # the monitoring host reaches itself on loopback, n1 on its private address
    assert _targets(_job(result, "node")) == {"127.0.0.1:9100": {"host": "gw"},
                                              "10.0.0.5:9100": {"host": "n1"}}
    assert _targets(_job(result, "gpu")) == {"10.0.0.5:9400": {"host": "n1"}}
    assert _targets(_job(result, "gateway")) == {"127.0.0.1:3903": {"host": "gw"}}
    llama = plan["engines"]["n1"]["llama_cpp"][0]
    ollama = plan["engines"]["n1"]["ollama"]
    job = _job(result, "llama_cpp")
    assert job["metrics_path"] == "/metrics"
    # the port is the plan's, never typed again
    assert _targets(job) == {f"10.0.0.5:{llama['port']}": {
        "host": "n1", "engine": "llama_cpp", "instance_id": llama["name"], "model": "llama-3.1-8b"}}
    # Ollama has no metrics: no job, but its one server is probed (with both models named)
    assert "ollama" not in {j["job_name"] for j in result["scrape_configs"]}
    probes = _targets(_job(result, "engine_health"))
    assert probes[f"http://10.0.0.5:{ollama[0]['port']}/api/version"] == {
        "host": "n1", "engine": "ollama", "instance_id": "ollama", "model": "mistral-7b,qwen"}
    assert f"http://10.0.0.5:{llama['port']}/health" in probes
    assert len(probes) == 2
    gateway = _job(result, "gateway_health")
    assert _targets(gateway) == {"https://127.0.0.1:443/healthz": {"host": "gw"}}
    assert gateway["params"] == {"module": ["gateway_tls"]}
    # probes go through the blackbox exporter with the URL as the target
    assert gateway["relabel_configs"][-1] == {"target_label": "__address__",
                                              "replacement": "127.0.0.1:9115"}
    assert result["credentials"] == []


def test_a_monitoring_host_elsewhere_reaches_the_gateway_on_its_address_and_exporters_on_theirs(team):
    _, hostvars, groups = team
    hostvars["mon"] = {"ansible_host": "10.0.0.9"}
    groups = {**groups, "monitoring": ["mon"]}
    result = _monitoring.scrape_configs(hostvars, groups, "mon")
    assert _targets(_job(result, "node")) == {"10.0.0.2:9100": {"host": "gw"},
                                              "127.0.0.1:9100": {"host": "mon"},
                                              "10.0.0.5:9100": {"host": "n1"}}
    assert set(_targets(_job(result, "gateway_health"))) == {"https://10.0.0.2:443/healthz"}


def test_exporters_bind_loopback_only_on_the_one_monitoring_host():
    assert _monitoring.exporter_bind("m", {}, ["m"]) == "127.0.0.1"
    # several monitoring hosts: each must reach the others
    assert _monitoring.exporter_bind("m", {"ansible_host": "10.0.0.9"}, ["m", "m2"]) == "10.0.0.9"
    # the engines' private address wins over the host's, facts over ansible_host
    assert _monitoring.exporter_bind("n", {"llm_engine_bind_address": "10.1.0.5",
                                           "ansible_host": "10.0.0.5"}, ["m"]) == "10.1.0.5"
    assert _monitoring.exporter_bind("n", {"ansible_default_ipv4": {"address": "10.0.0.6"},
                                           "ansible_host": "n.example"}, ["m"]) == "10.0.0.6"
    assert _monitoring.exporter_bind("n", {"llm_exporter_bind_address": "192.168.1.5"}, ["m"]) == "192.168.1.5"
    assert _monitoring.exporter_bind("n", {"ansible_host": "n.example"}, ["m"]) is None


def test_unreachable_services_are_named_all_at_once_with_the_fix():
    hostvars = {"mon": {}, "n1": {"ansible_host": "n1.example",
                                  "llama_cpp_instances": [{"name": "a", "alias": "m", "port": 8100}]},
                "n2": {"llm_exporter_bind_address": "127.0.0.1"}}
    groups = {"llm_nodes": ["n1", "n2"], "monitoring": ["mon"]}
    with pytest.raises(_monitoring.MonitoringError) as err:
        _monitoring.scrape_configs(hostvars, groups, "mon")
    problems = err.value.problems
    assert any("n1: the address its exporters listen on is unknown" in p and
               "llm_exporter_bind_address" in p for p in problems)
    assert any("cannot scrape llama_cpp instance a on n1: it listens on 127.0.0.1 only" in p and
               "llm_engine_bind_address" in p for p in problems)
    assert any("cannot scrape node_exporter on n2" in p for p in problems)
    assert len(problems) == 3


def test_inventory_instances_win_and_wildcard_binds_use_the_host_address():
    hostvars = {"mon": {}, "n1": {
        "ansible_host": "10.0.0.5", "llm_engine_bind_address": "0.0.0.0",
        "vllm_instances": [{"name": "v0", "served_name": "chat", "port": 8200},
                           {"name": "v1", "port": 8201}],
        "teamllm_engines": {"vllm": [{"name": "ignored", "port": 1}]}}}
    groups = {"llm_nodes": ["n1"], "monitoring": ["mon"]}
    job = _job(_monitoring.scrape_configs(hostvars, groups, "mon"), "vllm")
    assert {t: lab["model"] for t, lab in _targets(job).items()} == {
        "10.0.0.5:8200": "chat", "10.0.0.5:8201": "v1"}


def test_keyed_localai_gets_a_job_per_host_with_a_credentials_file_labelled_as_localai():
    hostvars = {"mon": {},
                "n1": {"localai_api_key": "k" * 40, "llm_engine_bind_address": "10.0.0.5",
                       "localai_instances": [{"name": "l0", "alias": "tiny", "port": 8300}]},
                "n2": {"llm_engine_bind_address": "10.0.0.6",
                       "localai_instances": [{"name": "l0", "alias": "tiny", "port": 8300}]}}
    groups = {"llm_nodes": ["n1", "n2"], "monitoring": ["mon"]}
    result = _monitoring.scrape_configs(hostvars, groups, "mon", credentials_dir="/c")
    keyed = _job(result, "localai-n1")
    assert keyed["authorization"] == {"type": "Bearer", "credentials_file": "/c/localai-n1"}
    assert keyed["relabel_configs"] == [{"target_label": "job", "replacement": "localai"}]
    assert set(_targets(_job(result, "localai"))) == {"10.0.0.6:8300"}
    # the key's value never enters the result: only where to read it
    assert result["credentials"] == [{"file": "/c/localai-n1", "host": "n1", "variable": "localai_api_key"}]
    assert "k" * 40 not in repr(result)


def test_ports_come_from_the_inventory_when_set_and_bad_ones_are_refused():
    hostvars = {"mon": {"node_exporter_port": 9200}}
    groups = {"monitoring": ["mon"]}
    assert set(_targets(_job(_monitoring.scrape_configs(hostvars, groups, "mon"), "node"))) == {
        "127.0.0.1:9200"}
    with pytest.raises(_monitoring.MonitoringError, match="node_exporter_port must be a port"):
        _monitoring.scrape_configs({"mon": {"node_exporter_port": "x"}}, groups, "mon")


def test_ipv6_addresses_are_bracketed():
    hostvars = {"mon": {}, "n1": {"llm_engine_bind_address": "fd00::5",
                                  "llama_cpp_instances": [{"name": "a", "alias": "m", "port": 8100}]}}
    result = _monitoring.scrape_configs(hostvars, {"llm_nodes": ["n1"], "monitoring": ["mon"]}, "mon")
    assert set(_targets(_job(result, "llama_cpp"))) == {"[fd00::5]:8100"}
    assert "http://[fd00::5]:8100/health" in _targets(_job(result, "engine_health"))


def test_gpu_plan_gives_each_unit_its_estimate_per_gpu_from_the_placement(team):
    plan, hostvars, _ = team
    units = {u["unit"]: u for u in _monitoring.gpu_plan(hostvars["n1"])}
    placed = {i["id"]: i for i in plan["placement"]["n1"]["instances"]}
    llama = next(i for i in placed.values() if i["engine"] == "llama_cpp")
    unit = units[f"teamllm-llama-server@{llama['id']}.service"]
    assert unit["engine"] == "llama_cpp" and unit["instance_id"] == llama["id"]
    assert unit["gpus"] == [{"index": llama["gpus"][0], "uuid": llama["gpu_uuids"][0],
                             "estimate_bytes": llama["bytes_per_gpu"][0]}]
    # both Ollama models are held by its one server: their estimates add up
    ollama = units["teamllm-ollama.service"]
    assert ollama["model"] == "mistral-7b,qwen" and ollama["instance_id"] == "ollama"
    expected = sum(i["bytes_per_gpu"][0] for i in placed.values() if i["engine"] == "ollama")
    assert [g["estimate_bytes"] for g in ollama["gpus"]] == [expected]
    assert len(units) == 2


def test_gpu_plan_leaves_out_ram_and_container_instances():
    hv = {"vllm_install_method": "container", "teamllm_placement": {"instances": [
        {"id": "c-0", "name": "c", "engine": "llama_cpp", "device": "cpu", "gpus": []},
        {"id": "v-0", "name": "v", "engine": "vllm", "device": "gpu", "gpus": [0], "bytes_per_gpu": [1]},
        {"id": "l-0", "name": "l", "engine": "localai", "device": "gpu", "gpus": [0], "bytes_per_gpu": [1]},
        {"id": "t-0", "name": "t", "engine": "llama_cpp", "device": "gpu", "gpus": [0, 1],
         "gpu_uuids": [None, "GPU-b"], "bytes_per_gpu": [5, 7]}]}}
    assert _monitoring.gpu_plan(hv) == [{
        "unit": "teamllm-llama-server@t-0.service", "engine": "llama_cpp", "instance_id": "t-0",
        "model": "t", "gpus": [{"index": 0, "uuid": "", "estimate_bytes": 5},
                               {"index": 1, "uuid": "GPU-b", "estimate_bytes": 7}]}]
    assert _monitoring.gpu_plan({}) == []


def test_the_registry_names_each_engine_probe_metrics_and_unit():
    assert {n: (e.health, e.metrics) for n, e in _engines.ENGINES.items()} == {
        "vllm": ("/health", "/metrics"), "llama_cpp": ("/health", "/metrics"),
        "ollama": ("/api/version", ""), "localai": ("/readyz", "/metrics")}
    assert _engines.ENGINES["llama_cpp"].unit.format(name="x") == "teamllm-llama-server@x.service"


def test_without_alerts_drops_the_named_alerts_and_empty_groups_and_refuses_unknown_names():
    rules = {"groups": [{"name": "a", "rules": [{"alert": "X", "expr": "1"}, {"alert": "Y", "expr": "1"}]},
                        {"name": "b", "interval": "1m", "rules": [{"alert": "Z", "expr": "1"}]}]}
    assert _monitoring.without_alerts(rules, ["Y", "Z"]) == {
        "groups": [{"name": "a", "rules": [{"alert": "X", "expr": "1"}]}]}
    assert _monitoring.without_alerts(rules, []) == rules
    with pytest.raises(_monitoring.MonitoringError, match="does not have: Nope"):
        _monitoring.without_alerts(rules, ["Nope"])


def test_alertmanager_routes_each_receiver_its_severities_and_keeps_the_rest_visible():
    config = _monitoring.alertmanager_config(
        [{"name": "ops", "webhooks": ["http://10.0.0.9:5001/alerts"]},
         {"name": "oncall", "emails": ["oncall@example.org"], "severities": ["critical"]}],
        smtp={"smarthost": "mail.example.org:587", "from": "teamllm@example.org",
              "auth_username": "u", "auth_password": "p"},
        group_wait="5s")
    route = config["route"]
    assert route["receiver"] == "null" and route["group_wait"] == "5s"
    assert route["routes"] == [
        {"receiver": "ops", "matchers": ['severity=~"critical|warning"'], "continue": True},
        {"receiver": "oncall", "matchers": ['severity=~"critical"'], "continue": True}]
    assert config["receivers"] == [
        {"name": "null"},
        {"name": "ops", "webhook_configs": [{"url": "http://10.0.0.9:5001/alerts", "send_resolved": True}]},
        {"name": "oncall", "email_configs": [{"to": "oncall@example.org", "send_resolved": True}]}]
    assert config["global"]["smtp_smarthost"] == "mail.example.org:587"
    assert config["global"]["smtp_auth_password"] == "p"
    assert {r["target_matchers"][0] for r in config["inhibit_rules"]} >= {"alertname=EngineMetricsDown"}
    assert "global" not in _monitoring.alertmanager_config([])


def test_alertmanager_receivers_are_checked_all_at_once():
    with pytest.raises(_monitoring.MonitoringError) as err:
        _monitoring.alertmanager_config([
            {"name": "a", "webhooks": ["ftp://x"], "severities": ["page"]},
            {"name": "a", "emails": ["nobody"]},
            {"name": "b", "url": "http://x"},
            {}])
    problems = "\n".join(err.value.problems)
    for text in ("webhooks must be http:// or https:// URLs", "severities must be of",
                 "the name a is taken", "emails must be e-mail addresses",
                 "set alertmanager_smtp.smarthost", "unknown keys url", "(b) has neither webhooks",
                 "alertmanager_receivers[3] needs a name"):
        assert text in problems
