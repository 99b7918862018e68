"""The rolling update's logic: what changes per host, version records, the drained gateway
configuration (derived set, nginx -t, atomic switch, back to the very set it came from), the
engine's in-flight requests, and the update's variables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from ansible_collections.teamllm.stack.plugins.module_utils import _upgrade
from ansible_collections.teamllm.stack.plugins.module_utils._upgrade import UpgradeError

CONF = """http {
    upstream teamllm_m0 {
        server 10.0.0.1:8100 max_fails=1 fail_timeout=10s;
        server 10.0.0.2:8100 max_fails=1 fail_timeout=10s;
        keepalive 16;
    }
    upstream teamllm_m1 {
        server 10.0.0.1:8101 max_fails=1 fail_timeout=10s;
        keepalive 16;
    }
    server {
        listen 443 ssl;
    }
}"""
TINY = {"name": "teamllm-tiny-0", "alias": "teamllm-tiny", "model": "tiny_v1", "port": 8100}
OTHER = {"name": "other-0", "alias": "other", "model": "other_v1", "port": 8101}


def test_mark_down_marks_only_the_backends_named_in_upstreams():
    text, found = _upgrade.mark_down(CONF, ["10.0.0.1:8100"])
    assert found == ["10.0.0.1:8100"]
    assert "server 10.0.0.1:8100 max_fails=1 fail_timeout=10s down;" in text
    # the one server left up is never taken out for a failed attempt (max_fails=0)
    assert "server 10.0.0.2:8100 max_fails=0 fail_timeout=10s;" in text
    assert "server 10.0.0.1:8101 max_fails=1 fail_timeout=10s;" in text
    # marking again changes nothing; an unknown backend is not found
    assert _upgrade.mark_down(text, ["10.0.0.1:8100", "10.9.9.9:1"]) == (text, ["10.0.0.1:8100"])


def test_mark_down_keeps_failure_accounting_while_two_servers_stay_up():
    conf = CONF.replace("        keepalive 16;\n    }\n    upstream teamllm_m1",
                        "        server 10.0.0.3:8100 fail_timeout=10s;\n"
                        "        keepalive 16;\n    }\n    upstream teamllm_m1", 1)
    text, _ = _upgrade.mark_down(conf, ["10.0.0.1:8100"])
    assert "server 10.0.0.2:8100 max_fails=1 fail_timeout=10s;" in text
    assert "server 10.0.0.3:8100 fail_timeout=10s;" in text
    text, _ = _upgrade.mark_down(conf, ["10.0.0.1:8100", "10.0.0.2:8100"])
    # a server without max_fails gets it
    assert "server 10.0.0.3:8100 fail_timeout=10s max_fails=0;" in text
    # an upstream the drain does not touch keeps its settings
    assert "server 10.0.0.1:8101 max_fails=1 fail_timeout=10s;" in text


def test_mark_down_refuses_to_leave_an_upstream_without_a_backend():
    with pytest.raises(UpgradeError, match="teamllm_m1 without a backend"):
        _upgrade.mark_down(CONF, ["10.0.0.1:8101"])
    with pytest.raises(UpgradeError, match="teamllm_m0 without a backend"):
        _upgrade.mark_down(CONF, ["10.0.0.1:8100", "10.0.0.2:8100"])
    with pytest.raises(UpgradeError, match="not closed"):
        _upgrade.mark_down("upstream a {\n server 1:1;\n", [])


def test_in_flight_sums_processing_and_deferred():
    metrics = ("# HELP llamacpp:requests_processing Number of requests processing.\n"
               "llamacpp:requests_processing 2\nllamacpp:requests_deferred 1\n"
               "llamacpp:prompt_tokens_total 40\n")
    assert _upgrade.in_flight(metrics) == 3
    assert _upgrade.in_flight("llamacpp:requests_processing 0\n") == 0
    assert _upgrade.in_flight("") == 0


def test_drain_problems_name_models_whose_only_backend_is_the_host():
    gateways = {"gw": {"routes": {"tiny": ["10.0.0.1:8100", "10.0.0.2:8100"], "other": ["10.0.0.1:8101"]},
                       "backends": {"n1": ["10.0.0.1:8100", "10.0.0.1:8101"], "n2": ["10.0.0.2:8100"]}}}
    problems = _upgrade.drain_problems(gateways, "n1")
    assert len(problems) == 1 and problems[0].startswith("n1 serves the only backend of other at gateway gw")
    assert "replicas: 2" in problems[0]
    assert _upgrade.drain_problems(gateways, "n2") == []
    assert _upgrade.drain_problems({"gw": {}}, "n1") == []


def test_plan_changes_update_rollback_and_instances_that_keep_their_current_version():
    plan = _upgrade.plan_changes([TINY, OTHER], {}, {"teamllm-tiny": "tiny_v2"})
    assert plan["changes"] == [{"name": "teamllm-tiny-0", "alias": "teamllm-tiny", "from": "tiny_v1", "to": "tiny_v2"}]
    assert [i["model"] for i in plan["before"]] == ["tiny_v1", "other_v1"]
    assert [i["model"] for i in plan["after"]] == ["tiny_v2", "other_v1"]
    assert plan["summary"] == "teamllm-tiny (instance teamllm-tiny-0) tiny_v1 -> tiny_v2"
    # the node's record wins over the inventory: an earlier update of `other` is kept
    states = {"teamllm-tiny-0": _upgrade.record(plan["changes"][0]),
              "other-0": {"current": "other_v2", "previous": "other_v1"}}
    again = _upgrade.plan_changes([TINY, OTHER], states, {"teamllm-tiny": "tiny_v2"})
    assert again["changes"] == [] and again["summary"] == ""
    assert [i["model"] for i in again["after"]] == ["tiny_v2", "other_v2"]
    back = _upgrade.plan_changes([TINY, OTHER], states, rollback=True)
    assert [(c["name"], c["from"], c["to"]) for c in back["changes"]] == [
        ("teamllm-tiny-0", "tiny_v2", "tiny_v1"), ("other-0", "other_v2", "other_v1")]
    assert _upgrade.record(back["changes"][0]) == {"current": "tiny_v1", "previous": "tiny_v2"}
    assert _upgrade.plan_changes([TINY], {}, rollback=True)["changes"] == []


def test_plan_changes_of_the_build_restart_every_instance_and_roll_back():
    engine = {"inventory": "cpu_v1", "state": None, "to": "cpu_v2"}
    plan = _upgrade.plan_changes([TINY, OTHER], {}, {}, engine=engine)
    assert plan["engine"] == {"engine": "llama_cpp", "from": "cpu_v1", "to": "cpu_v2"}
    assert plan["changes"] == [] and plan["needed"]
    # a new build restarts every instance of the host, not only those whose model changes
    assert plan["restart"] == ["teamllm-tiny-0", "other-0"]
    assert (plan["from"], plan["to"]) == (["cpu_v1"], ["cpu_v2"])
    assert plan["summary"] == "llama.cpp engine cpu_v1 -> cpu_v2"
    # model and build at once
    both = _upgrade.plan_changes([TINY, OTHER], {}, {"teamllm-tiny": "tiny_v2"}, engine=engine)
    assert both["summary"] == "teamllm-tiny (instance teamllm-tiny-0) tiny_v1 -> tiny_v2, llama.cpp engine cpu_v1 -> cpu_v2"
    assert (both["from"], both["to"]) == (["tiny_v1", "cpu_v1"], ["tiny_v2", "cpu_v2"])
    # the node's record wins over the inventory; a rollback goes to its previous build
    state = _upgrade.record(plan["engine"])
    again = _upgrade.plan_changes([TINY], {}, {}, engine=dict(engine, state=state))
    assert again["engine"] is None and not again["needed"] and again["restart"] == []
    back = _upgrade.plan_changes([TINY], {}, rollback=True, engine=dict(engine, state=state, to=None))
    assert back["engine"] == {"engine": "llama_cpp", "from": "cpu_v2", "to": "cpu_v1"}
    # nothing recorded: nothing to roll back; a host without instances has no build to change
    assert _upgrade.plan_changes([TINY], {}, rollback=True, engine=dict(engine, to=None))["needed"] is False
    assert _upgrade.plan_changes([], {}, engine=engine)["engine"] is None
    # model changes only: the build is left alone, only the changed instance restarts
    models = _upgrade.plan_changes([TINY, OTHER], {}, {"teamllm-tiny": "tiny_v2"},
                                   engine=dict(engine, to=None))
    assert models["engine"] is None and models["restart"] == ["teamllm-tiny-0"]


MANIFEST = {"tiny_v1": {"path": "models/t1.gguf"}, "tiny_v2": {"path": "models/t2.gguf"},
            "hf": {"path": "models/hf.tar.gz"}}
MODELS = [{"name": "teamllm-tiny", "engine": "llama_cpp"}, {"name": "qwen", "engine": "vllm"}]


@pytest.mark.parametrize(("update", "rollback", "expected"), [
    ({"teamllm-tiny": "tiny_v2"}, False, []),
    ({}, True, []),
    ("x", False, ["upgrade_models must be a dict"]),
    ({"teamllm-tiny": "tiny_v2"}, True, ["are both set"]),
    ({"nope": "tiny_v2"}, False, ["upgrade_models.nope: no model of llm_models is served as 'nope'; use one of qwen, teamllm-tiny"]),
    ({"qwen": "tiny_v2"}, False, ["upgrade_models.qwen: its engine is 'vllm'"]),
    ({"teamllm-tiny": "missing"}, False, ["upgrade_models.teamllm-tiny names 'missing', which is not an entry of llm_downloads"]),
    ({"teamllm-tiny": "hf"}, False, ["upgrade_models.teamllm-tiny: 'hf' is not a GGUF file"]),
])
def test_variable_problems(update, rollback, expected):
    found = _upgrade.variable_problems(update, rollback, MODELS, MANIFEST)
    assert len(found) == len(expected)
    for problem, start in zip(found, expected):
        assert start in problem


@pytest.mark.parametrize(("engines", "rollback", "expected"), [
    ({"llama_cpp": "hf"}, False, []),
    ({}, True, []),
    (["llama_cpp"], False, ["upgrade_engines must be a dict"]),
    ({"llama_cpp": "hf"}, True, ["upgrade_engines and upgrade_rollback: true are both set"]),
    ({"vllm": "hf"}, False, ["upgrade_engines.vllm: upgrade.yml updates the builds of llama_cpp only"]),
    ({"llama_cpp": ""}, False, ["upgrade_engines.llama_cpp must name an entry of llm_downloads"]),
    ({"llama_cpp": "missing"}, False, ["upgrade_engines.llama_cpp names 'missing', which is not an entry of llm_downloads"]),
    ({"llama_cpp": "tiny_v2"}, False, ["upgrade_engines.llama_cpp: 'tiny_v2' is not a build archive"]),
])
def test_engine_variable_problems(engines, rollback, expected):
    found = _upgrade.variable_problems({}, rollback, MODELS, MANIFEST, engines)
    assert len(found) == len(expected)
    for problem, start in zip(found, expected):
        assert start in problem


def test_engine_and_model_problems_add_up():
    found = _upgrade.variable_problems({"nope": "tiny_v2"}, False, MODELS, MANIFEST, {"llama_cpp": "missing"})
    assert [p.split(":")[0].split(" ")[0] for p in found] == ["upgrade_engines.llama_cpp", "upgrade_models.nope"]


# --- the drained configuration set on a real directory, nginx -t stood in by a callable -------

def _live(tmp_path: Path) -> tuple[str, str]:
    sets = tmp_path / "teamllm.d"
    original = sets / "0123456789abcdef"
    original.mkdir(parents=True)
    (original / "nginx.conf").write_text(CONF.replace("http {", f'http {{\n    lua_package_path "{original}/?.lua;;";'))
    (original / "teamllm_gateway.lua").write_text(f'local clients = "{original}/clients.json"\n')
    (original / ".checked").write_text("nginx -t passed\n")
    link = tmp_path / "teamllm"
    os.symlink(original, link)
    return str(link), str(original)


def _ok(calls):
    def test(conf):
        calls.append(conf)
        return 0, ""
    return test


def test_drain_derives_a_checked_set_and_active_returns_to_the_very_same_set(tmp_path):
    link, original = _live(tmp_path)
    calls = []
    result = _upgrade.switch_drain(link, ["10.0.0.1:8100"], "drained", ".checked", _ok(calls))
    drained = os.path.realpath(link)
    assert result["changed"] and result["after"] == ["10.0.0.1:8100"] and result["set"] == drained
    assert drained != original and os.path.basename(drained).startswith("drain-")
    conf = Path(drained, "nginx.conf").read_text()
    assert "10.0.0.1:8100 max_fails=1 fail_timeout=10s down;" in conf
    assert original not in conf and f'"{drained}/?.lua;;"' in conf
    assert Path(drained, "teamllm_gateway.lua").read_text() == f'local clients = "{drained}/clients.json"\n'
    assert calls == [f"{drained}/nginx.conf"] and Path(drained, ".checked").exists()
    assert json.loads(Path(drained, _upgrade.DRAIN_RECORD).read_text())["from"] == original
    # the live set's files were never touched
    assert "down" not in Path(original, "nginx.conf").read_text()
    # draining again changes nothing
    assert not _upgrade.switch_drain(link, ["10.0.0.1:8100"], "drained", ".checked", _ok(calls))["changed"]
    # back: the link points at the original set again, the drained set is gone
    back = _upgrade.switch_drain(link, ["10.0.0.1:8100"], "active", ".checked", _ok(calls))
    assert back["changed"] and back["after"] == [] and os.path.realpath(link) == original
    assert not os.path.exists(drained)
    assert not _upgrade.switch_drain(link, ["10.0.0.1:8100"], "active", ".checked", _ok(calls))["changed"]


def test_drains_of_two_hosts_add_up_and_check_mode_changes_nothing(tmp_path):
    link, original = _live(tmp_path)
    calls = []
    _upgrade.switch_drain(link, ["10.0.0.1:8100"], "drained", ".checked", _ok(calls))
    first = os.path.realpath(link)
    # the other replica of m0 too would leave m0 without a backend: refused, nothing switched
    with pytest.raises(UpgradeError, match="teamllm_m0 without a backend"):
        _upgrade.switch_drain(link, ["10.0.0.2:8100"], "drained", ".checked", _ok(calls))
    assert os.path.realpath(link) == first
    # check mode predicts the change and writes nothing
    sets = sorted(os.listdir(Path(original).parent))
    predicted = _upgrade.switch_drain(link, ["10.0.0.1:8100"], "active", ".checked", _ok(calls),
                                      check_mode=True)
    assert predicted["changed"] and predicted["set"] == original
    assert os.path.realpath(link) == first and sorted(os.listdir(Path(original).parent)) == sets
    # a second host's backend (another model's second replica) adds up with the first
    conf = Path(original, "nginx.conf")
    conf.write_text(conf.read_text().replace(
        "server 10.0.0.1:8101 max_fails=1 fail_timeout=10s;",
        "server 10.0.0.1:8101 max_fails=1 fail_timeout=10s;\n        server 10.0.0.3:8101;"))
    both = _upgrade.switch_drain(link, ["10.0.0.3:8101"], "drained", ".checked", _ok(calls))
    assert both["after"] == ["10.0.0.1:8100", "10.0.0.3:8101"]
    text = Path(os.path.realpath(link), "nginx.conf").read_text()
    assert "10.0.0.1:8100 max_fails=1 fail_timeout=10s down;" in text and "10.0.0.3:8101 down;" in text
    assert not os.path.exists(first)  # the earlier drained set was replaced and removed
    one = _upgrade.switch_drain(link, ["10.0.0.1:8100"], "active", ".checked", _ok(calls))
    assert one["after"] == ["10.0.0.3:8101"]
    _upgrade.switch_drain(link, ["10.0.0.3:8101"], "active", ".checked", _ok(calls))
    assert os.path.realpath(link) == original
    assert sorted(os.listdir(Path(original).parent)) == [os.path.basename(original)]


def test_a_set_failing_nginx_t_is_removed_and_the_live_one_kept(tmp_path):
    link, original = _live(tmp_path)
    with pytest.raises(UpgradeError, match=r"fails nginx -t \(\[emerg\] bad\)"):
        _upgrade.switch_drain(link, ["10.0.0.1:8100"], "drained", ".checked", lambda conf: (1, "[emerg] bad\n"))
    assert os.path.realpath(link) == original
    assert sorted(os.listdir(Path(original).parent)) == [os.path.basename(original)]


def test_a_link_that_is_not_a_set_is_refused(tmp_path):
    with pytest.raises(UpgradeError, match="converge the gateway"):
        _upgrade.switch_drain(str(tmp_path / "none"), ["a:1"], "drained", ".checked", _ok([]))


def test_module_defaults_are_the_gateway_roles_paths():
    """gateway_drain's defaults name the gateway role's live link and marker."""
    root = Path(__file__).resolve().parents[4]
    gateway = yaml.safe_load((root / "roles/gateway/vars/main.yml").read_text())
    source = (root / "plugins/modules/gateway_drain.py").read_text()
    docs = yaml.safe_load(source.split('DOCUMENTATION = r"""')[1].split('"""')[0])
    assert docs["options"]["link"]["default"] == gateway["_gateway_conf_dir"]
    assert docs["options"]["marker"]["default"] == gateway["_gateway_set_marker"]
