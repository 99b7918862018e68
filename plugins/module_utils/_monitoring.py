# Copyright: teamllm.stack contributors
# Apache License 2.0
"""What Prometheus scrapes, computed from the inventory and the published deployment plan.

Nothing here is typed twice: the hosts come from the inventory's groups, each engine instance
(its port, its served name) from what the host runs (``<engine>_instances``, which defaults to
the plan's ``teamllm_engines``), the paths and units from the engine registry
(``_engines.ENGINES``), and every address from the same rule the gateway's routes follow
(``_engines.deployment.gateway_routes``): a host reaches itself on loopback, another host on
the address its service listens on, and never a service that listens on another host's
loopback.

- :func:`scrape_configs`: Prometheus's ``scrape_configs`` (jobs ``node``, ``gpu``,
  ``gateway``, one per engine with metrics, and the blackbox probes ``engine_health`` and
  ``gateway_health``) for one monitoring host, with the credential files keyed engines need
  and every problem raised at once as :class:`MonitoringError`.
- :func:`exporter_bind`: the address a host's exporters listen on.
- :func:`gpu_plan`: per systemd unit of a GPU node, the placement's memory estimate per GPU
  (the GPU exporter's "plan against reality" input).
- :func:`without_alerts`: a rule file's groups less the alerts the inventory disables.
- :func:`alertmanager_config`: Alertmanager's configuration from the inventory's receivers.

Pure Python; private to the collection.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.teamllm.stack.plugins.module_utils._engines import ENGINES, LOOPBACK
from ansible_collections.teamllm.stack.plugins.module_utils._network import is_loopback

# The groups whose hosts run the node exporter ("every host").
MONITORED_GROUPS = ("llm_nodes", "gpu_nodes", "gateway", "monitoring", "webui")
# Each exporter's port variable and its default. The roles' defaults hold the same numbers
# (a unit test checks it); the inventory's value on a host wins.
PORTS = {
    "node_exporter_port": 9100,
    "gpu_exporter_port": 9400,
    "gateway_metrics_port": 3903,
    "gateway_https_port": 443,
}
BLACKBOX = "127.0.0.1:9115"
WILDCARDS = ("0.0.0.0", "::")  # noqa: S104 (compared with, never bound)


class MonitoringError(ValueError):
    """Targets that cannot be scraped; ``problems`` names each host, service and fix."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _bracket(address):
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def _port(hv, name):
    try:
        return int(hv.get(name) or PORTS[name])
    except (TypeError, ValueError):
        raise MonitoringError([f"{name} must be a port number, got {hv.get(name)!r}"]) from None


def host_address(host, hv):
    """The address other hosts reach ``host`` on: its default IPv4 address (facts), else its
    ``ansible_host`` when that is an IP address, else None."""
    facts = hv.get("ansible_default_ipv4") or (hv.get("ansible_facts") or {}).get("default_ipv4") or {}
    if facts.get("address"):
        return str(facts["address"])
    candidate = str(hv.get("ansible_host") or "")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return None
    return candidate


def exporter_bind(host, hv, monitors):
    """The address ``host``'s exporters listen on: ``llm_exporter_bind_address`` when set;
    loopback when the host is the only monitoring host; else the engines' private address when
    they have one; else the host's own address (facts or ansible_host). None when none is
    known (the caller names the fix)."""
    explicit = str(hv.get("llm_exporter_bind_address") or "")
    if explicit:
        return explicit
    if list(monitors) == [host]:
        return LOOPBACK
    engines = str(hv.get("llm_engine_bind_address") or LOOPBACK)
    if not is_loopback(engines) and engines not in WILDCARDS:
        return engines
    return host_address(host, hv)


def reach(host, monitor, bind, hv):
    """(address, problem): where ``monitor`` reaches a service of ``host`` listening on
    ``bind`` (the rule of the gateway's routes)."""
    wildcard = bind in WILDCARDS
    if host == monitor:
        return (LOOPBACK if wildcard else bind), None
    if is_loopback(bind):
        return None, f"listens on {bind} only"
    if wildcard:
        address = host_address(host, hv)
        return (address, None) if address else (None, "listens on every address but the host has no known address")
    return bind, None


def engine_instances(hv):
    """The engine instances a host runs: ``<engine>_instances`` (the inventory) or the plan's
    ``teamllm_engines``, as [{engine, id, model, port, bind}] in the registry's order; the
    instances of a one-server engine share one entry (the server) naming every model."""
    published = hv.get("teamllm_engines") or {}
    default_bind = str(hv.get("llm_engine_bind_address") or LOOPBACK)
    result = []
    for name, engine in ENGINES.items():
        instances = hv.get(f"{name}_instances") or published.get(name) or []
        if not instances:
            continue
        bind = str(hv.get(engine.bind_variable) or default_bind)
        if engine.shared_server:
            server = hv.get(f"{name}_server") or {}
            port = int(server.get("port") or instances[0]["port"])
            models = sorted({str(i.get(engine.served) or i["name"]) for i in instances})
            result.append({"engine": name, "id": name, "model": ",".join(models), "port": port,
                           "bind": bind})
            continue
        for inst in instances:
            result.append({"engine": name, "id": str(inst.get(engine.instance_id) or inst["name"]),
                           "model": str(inst.get(engine.served) or inst["name"]),
                           "port": int(inst["port"]), "bind": bind})
    return result


def _group(groups, name):
    return sorted(set(groups.get(name) or []))


def monitored_hosts(groups):
    """Every host of the groups the collection manages, sorted."""
    return sorted({h for g in MONITORED_GROUPS for h in groups.get(g) or []})


def _static(target, labels):
    return {"targets": [target], "labels": dict(sorted(labels.items()))}


def _probe_job(name, module, static_configs, interval=None):
    job = {
        "job_name": name,
        "metrics_path": "/probe",
        "params": {"module": [module]},
        "static_configs": static_configs,
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "target"},
            {"target_label": "__address__", "replacement": BLACKBOX},
        ],
    }
    if interval:
        job["scrape_interval"] = interval
    return job


def scrape_configs(hostvars, groups, monitor, credentials_dir="/etc/prometheus/credentials"):
    """Prometheus ``scrape_configs`` for the monitoring host ``monitor``, and the credential
    files keyed engines need: ``{"scrape_configs": [...], "credentials": [{"file", "host",
    "variable"}]}``. ``hostvars`` maps each host to its variables (``hostvars``), ``groups``
    each group to its hosts. Raises :class:`MonitoringError` naming every service the
    monitoring host cannot reach."""
    monitors = _group(groups, "monitoring")
    problems, jobs, credentials = [], [], []

    def where(host, service, bind):
        address, problem = reach(host, monitor, bind, hostvars[host])
        if problem:
            fix = ("set llm_exporter_bind_address on it to its private address"
                   if service.endswith("exporter") or service == "mtail" else
                   "set llm_engine_bind_address on it to its private address (the engines then "
                   "admit the gateway and monitoring hosts only)")
            problems.append(f"monitoring host {monitor} cannot scrape {service} on {host}: it "
                            f"{problem}; {fix}, or run Prometheus there")
        return address

    def exporter_job(job, hosts, port_var, service):
        configs = []
        for host in hosts:
            hv = hostvars[host]
            bind = exporter_bind(host, hv, monitors)
            if bind is None:
                problems.append(f"{host}: the address its exporters listen on is unknown (no "
                                f"facts, ansible_host is not an IP address); set "
                                f"llm_exporter_bind_address on it")
                continue
            address = where(host, service, bind)
            if address:
                configs.append(_static(f"{_bracket(address)}:{_port(hv, port_var)}", {"host": host}))
        if configs:
            jobs.append({"job_name": job, "static_configs": configs})

    exporter_job("node", monitored_hosts(groups), "node_exporter_port", "node_exporter")
    exporter_job("gpu", _group(groups, "gpu_nodes"), "gpu_exporter_port", "gpu_exporter")
    exporter_job("gateway", _group(groups, "gateway"), "gateway_metrics_port", "mtail")

    by_engine, health = {}, []
    for host in _group(groups, "llm_nodes"):
        hv = hostvars[host]
        for inst in engine_instances(hv):
            engine = ENGINES[inst["engine"]]
            address = where(host, f"{inst['engine']} instance {inst['id']}", inst["bind"])
            if not address:
                continue
            target = f"{_bracket(address)}:{inst['port']}"
            labels = {"host": host, "engine": inst["engine"], "instance_id": inst["id"],
                      "model": inst["model"]}
            health.append(_static(f"http://{target}{engine.health}", labels))
            if not engine.metrics:
                continue
            key = str(hv.get(engine.key_variable) or "") if engine.keyed else ""
            group = (inst["engine"], host if key else "")
            if key and group not in by_engine:
                credentials.append({"file": f"{credentials_dir}/{inst['engine']}-{host}",
                                    "host": host, "variable": engine.key_variable})
            by_engine.setdefault(group, []).append(_static(target, labels))
    for (engine, keyed_host), configs in sorted(by_engine.items()):
        job = {"job_name": engine if not keyed_host else f"{engine}-{keyed_host}",
               "metrics_path": ENGINES[engine].metrics, "static_configs": configs}
        if keyed_host:
            # one job per keyed host (its key), labelled as the engine's job
            job["authorization"] = {"type": "Bearer",
                                    "credentials_file": f"{credentials_dir}/{engine}-{keyed_host}"}
            job["relabel_configs"] = [{"target_label": "job", "replacement": engine}]
        jobs.append(job)
    if health:
        jobs.append(_probe_job("engine_health", "http_2xx", health))

    gateways = []
    for host in _group(groups, "gateway"):
        hv = hostvars[host]
        # nginx listens on every address; another host reaches it on its gateway address
        address = LOOPBACK if host == monitor else (
            str(hv.get("llm_gateway_address") or "") or host_address(host, hv))
        if not address:
            problems.append(f"{host}: monitoring host {monitor} does not know the gateway's "
                            f"address; set llm_gateway_address on it")
            continue
        gateways.append(_static(f"https://{_bracket(address)}:{_port(hv, 'gateway_https_port')}/healthz",
                                {"host": host}))
    if gateways:
        jobs.append(_probe_job("gateway_health", "gateway_tls", gateways))
    if problems:
        raise MonitoringError(sorted(set(problems)))
    return {"scrape_configs": jobs, "credentials": credentials}


def gpu_plan(hv):
    """The placement's GPU memory estimates of the instances on one host, per systemd unit:
    [{unit, engine, instance_id, model, gpus: [{index, uuid, estimate_bytes}]}], from the
    host's published ``teamllm_placement`` (its entry of the placement, with the instances'
    ``gpu_uuids``, ``gpus`` and ``bytes_per_gpu``). Instances in containers (no unit) and in
    RAM are left out; the instances of a one-server engine add up under its one unit."""
    placed = (hv.get("teamllm_placement") or {}).get("instances") or []
    units = {}
    for inst in placed:
        engine = ENGINES.get(inst.get("engine"))
        if engine is None or not engine.unit or inst.get("device") != "gpu":
            continue
        if engine.name == "vllm" and hv.get("vllm_install_method") == "container":
            continue
        unit = engine.unit.format(name=inst["id"])
        entry = units.setdefault(unit, {"unit": unit, "engine": engine.name,
                                        "instance_id": engine.name if engine.shared_server else inst["id"],
                                        "models": set(), "gpus": {}})
        entry["models"].add(str(inst["name"]))
        uuids = list(inst.get("gpu_uuids") or [])
        for pos, index in enumerate(inst.get("gpus") or []):
            uuid = str(uuids[pos]) if pos < len(uuids) and uuids[pos] else ""
            claim = (inst.get("bytes_per_gpu") or [0] * (pos + 1))
            size = int(claim[pos]) if pos < len(claim) else 0
            gpu = entry["gpus"].setdefault(int(index), {"index": int(index), "uuid": uuid,
                                                        "estimate_bytes": 0})
            gpu["estimate_bytes"] += size
    result = []
    for unit in sorted(units):
        entry = units[unit]
        result.append({"unit": unit, "engine": entry["engine"], "instance_id": entry["instance_id"],
                       "model": ",".join(sorted(entry["models"])),
                       "gpus": [entry["gpus"][i] for i in sorted(entry["gpus"])]})
    return result


def without_alerts(rules, names):
    """The rule file ``rules`` ({groups: [{name, rules}]}) without the alerts named in
    ``names``; a group left empty is dropped. Raises :class:`MonitoringError` naming any name
    that is not an alert of ``rules``."""
    names = set(names or [])
    groups = (rules or {}).get("groups") or []
    known = {r.get("alert") for g in groups for r in g.get("rules") or []}
    unknown = sorted(names - known)
    if unknown:
        raise MonitoringError([f"prometheus_alerts_disabled names alerts the collection does not have: "
                               f"{', '.join(unknown)} (its alerts: {', '.join(sorted(a for a in known if a))})"])
    result = []
    for group in groups:
        kept = [r for r in group.get("rules") or [] if r.get("alert") not in names]
        if kept:
            result.append({**group, "rules": kept})
    return {"groups": result}


SEVERITIES = ("critical", "warning", "info")
# A more severe alert silences its milder twin while both fire.
INHIBIT_RULES = [
    {"source_matchers": ["alertname=GatewayCertificateExpiringCritical"],
     "target_matchers": ["alertname=GatewayCertificateExpiring"], "equal": ["host"]},
    {"source_matchers": ["alertname=EngineDown"], "target_matchers": ["alertname=EngineMetricsDown"],
     "equal": ["host", "instance_id"]},
    {"source_matchers": ["alertname=SystemdUnitFailed"],
     "target_matchers": ["alertname=SystemdUnitCrashLooping"], "equal": ["host", "name"]},
]


def alertmanager_config(receivers, smtp=None, group_wait="30s", group_interval="5m",
                        repeat_interval="4h"):
    """Alertmanager's configuration: one receiver per ``receivers`` item ({name, webhooks:
    [url], emails: [address], severities: [critical, warning, info]}) routed the alerts of its
    severities (default critical and warning), every receiver that matches notified
    (``continue``); alerts no receiver takes stay visible in Alertmanager. ``smtp`` ({smarthost,
    from, auth_username?, auth_password?, require_tls?}) is needed by e-mail receivers. Raises
    :class:`MonitoringError` naming every problem."""
    problems, configs, routes = [], [], []
    names = set()
    for pos, item in enumerate(receivers or []):
        where = f"alertmanager_receivers[{pos}]"
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            problems.append(f"{where} needs a name")
            continue
        name = str(item["name"]).strip()
        if name in names or name == "null":
            problems.append(f"{where}: the name {name} is taken")
        names.add(name)
        unknown = sorted(set(item) - {"name", "webhooks", "emails", "severities"})
        if unknown:
            problems.append(f"{where} ({name}): unknown keys {', '.join(unknown)} "
                            f"(it takes name, webhooks, emails, severities)")
        webhooks = list(item.get("webhooks") or [])
        emails = list(item.get("emails") or [])
        severities = list(item.get("severities") or ["critical", "warning"])
        bad = [u for u in webhooks if not str(u).startswith(("http://", "https://"))]
        if bad:
            problems.append(f"{where} ({name}): webhooks must be http:// or https:// URLs, got {bad}")
        bad = [e for e in emails if "@" not in str(e)]
        if bad:
            problems.append(f"{where} ({name}): emails must be e-mail addresses, got {bad}")
        bad = [s for s in severities if s not in SEVERITIES]
        if bad:
            problems.append(f"{where} ({name}): severities must be of {', '.join(SEVERITIES)}, got {bad}")
        if not webhooks and not emails:
            problems.append(f"{where} ({name}) has neither webhooks nor emails")
        if emails and not (smtp or {}).get("smarthost"):
            problems.append(f"{where} ({name}) sends e-mail: set alertmanager_smtp.smarthost "
                            f"(host:port) and alertmanager_smtp.from")
        receiver = {"name": name}
        if webhooks:
            receiver["webhook_configs"] = [{"url": str(u), "send_resolved": True} for u in webhooks]
        if emails:
            receiver["email_configs"] = [{"to": str(e), "send_resolved": True} for e in emails]
        configs.append(receiver)
        routes.append({"receiver": name, "matchers": [f"severity=~\"{'|'.join(severities)}\""],
                       "continue": True})
    if problems:
        raise MonitoringError(problems)
    config = {
        "route": {"receiver": "null", "group_by": ["alertname", "host"], "group_wait": group_wait,
                  "group_interval": group_interval, "repeat_interval": repeat_interval,
                  "routes": routes},
        "receivers": [{"name": "null"}] + configs,
        "inhibit_rules": INHIBIT_RULES,
    }
    smtp = dict(smtp or {})
    if smtp.get("smarthost"):
        glob = {"smtp_smarthost": str(smtp["smarthost"]), "smtp_from": str(smtp.get("from") or ""),
                "smtp_require_tls": bool(smtp.get("require_tls", True))}
        if smtp.get("auth_username"):
            glob["smtp_auth_username"] = str(smtp["auth_username"])
            glob["smtp_auth_password"] = str(smtp.get("auth_password") or "")
        config["global"] = glob
    return config
