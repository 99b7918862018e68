# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The deployment plan: the placement (``_placement.plan``) turned, once, into what every host
runs and what every gateway routes.

:func:`deployment_plan` gives each placed instance its port (one per instance; the instances of
an engine with one server per host share that server's port), maps each host's instances onto
its engine roles' instance lists (``teamllm_engines``: {engine: [instance, ...]}), checks them
side by side, and computes each gateway's routes and which backend key each served name needs
(``teamllm_gateway``). Every problem is collected and raised at once as
:class:`~._engines.EngineError`, before any host is touched. Pure Python; private to the
collection."""

from __future__ import annotations

import copy

from ansible_collections.teamllm.stack.plugins.module_utils._engines import ENGINES, LOOPBACK, EngineError
from ansible_collections.teamllm.stack.plugins.module_utils._engines.common import model_items

DEFAULT_PORT_BASE = 8100


def _loopback(address):
    return address.startswith("127.") or address in ("::1", "localhost")


def assign_ports(placement, port_base=DEFAULT_PORT_BASE):
    """A copy of ``placement`` with each instance's ``port``: per host, in the placement's
    order, the next free port from ``port_base``; every instance of an engine with one server
    per host is given that server's port (its first instance's)."""
    try:
        port_base = int(port_base)
    except (TypeError, ValueError):
        raise EngineError([f"llm_engine_port_base must be a port number, got {port_base!r}"]) from None
    result = copy.deepcopy(placement or {})
    problems = []
    for host, entry in sorted(result.items()):
        port, servers = port_base, {}
        for inst in entry.get("instances", []):
            engine = ENGINES[inst["engine"]]
            if engine.name in servers:
                inst["port"] = servers[engine.name]
                continue
            inst["port"] = port
            if engine.shared_server:
                servers[engine.name] = port
            port += 1
        if entry.get("instances") and not 1 <= port_base <= port - 1 <= 65535:
            problems.append(f"{host}: llm_engine_port_base {port_base} leaves no port for its "
                            f"{len(entry['instances'])} instance(s); choose a base of 1024-"
                            f"{65536 - len(entry['instances'])}")
    if problems:
        raise EngineError(problems)
    return result


def _bind(node, engine):
    binds = (node or {}).get("binds") or {}
    return str(binds.get(engine) or binds.get("default") or LOOPBACK)


def gateway_routes(placement, gateway, nodes):
    """(routes, problems): {served name: ["address:port", ...]} as ``gateway`` reaches them.

    An instance on the gateway's own host is reached on its bind address (loopback when it
    listens on every address). One on another host is reached on its bind address when that
    is a specific (private) address, on the host's placement address when it listens on every
    address, and not at all when it listens on loopback only (a problem naming the fix)."""
    routes, _backends, problems = _gateway_targets(placement, gateway, nodes)
    return routes, problems


def gateway_backends(placement, gateway, nodes):
    """{host: ["address:port", ...]}: the backends of ``gateway``'s routes that each engine
    host serves (the addresses ``gateway_routes`` gives; a rolling update drains them)."""
    return _gateway_targets(placement, gateway, nodes)[1]


def _gateway_targets(placement, gateway, nodes):
    routes, backends, problems = {}, {}, []
    for host, entry in sorted((placement or {}).items()):
        for inst in entry.get("instances", []):
            bind = _bind(nodes.get(host), inst["engine"])
            wildcard = bind in ("0.0.0.0", "::")  # noqa: S104
            if host == gateway:
                address = LOOPBACK if wildcard else bind
            elif _loopback(bind):
                problems.append(
                    f"gateway {gateway} cannot reach {inst['name']} on {host}: its engines "
                    f"listen on {bind} only; set llm_engine_bind_address (or "
                    f"{ENGINES[inst['engine']].bind_variable}) on {host} to its private address "
                    f"(its engines then admit only llm_engine_allow_from) or run a gateway there")
                continue
            else:
                address = (entry.get("address") or host) if wildcard else bind
            if ":" in address and not address.startswith("["):
                address = f"[{address}]"
            target = f"{address}:{inst['port']}"
            if target not in routes.setdefault(inst["name"], []):
                routes[inst["name"]].append(target)
            if target not in backends.setdefault(host, []):
                backends[host].append(target)
    return ({name: sorted(targets) for name, targets in sorted(routes.items())},
            {host: sorted(targets) for host, targets in sorted(backends.items())}, problems)


def backend_keys(placement, nodes):
    """(keys, problems): {served name: {"host", "variable"}} naming the inventory variable that
    holds the API key a served name's backends require (engines that may require one, where
    the node sets it). The values are compared, never returned: replicas behind one gateway
    location must share one key."""
    refs, values, problems = {}, {}, []
    for host, entry in sorted((placement or {}).items()):
        for inst in entry.get("instances", []):
            engine = ENGINES[inst["engine"]]
            if not engine.keyed:
                continue
            key = ((nodes.get(host) or {}).get("keys") or {}).get(engine.name) or ""
            name = inst["name"]
            if name in values and values[name] != key:
                problems.append(
                    f"the replicas of {name} require different API keys ({engine.key_variable} "
                    f"on {host} differs from {refs[name]['host'] if name in refs else 'another node'}'s); "
                    f"give every {engine.name} node serving it the same key")
                continue
            values[name] = key
            if key and name not in refs:
                refs[name] = {"host": host, "variable": engine.key_variable}
    return dict(sorted(refs.items())), sorted(set(problems))


def deployment_plan(placement, models, downloads, nodes=None, gateways=(),
                    port_base=DEFAULT_PORT_BASE):
    """The deployment of ``placement`` (``_placement.plan(...)["placement"]``).

    ``models`` is ``llm_models``; ``downloads`` is ``llm_downloads``; ``nodes`` maps each host
    to what its inventory says of its engines: {"binds": {"default": llm_engine_bind_address,
    <engine>: <engine>_bind_address}, "keys": {<engine>: <engine>_api_key},
    "ollama_model_source", "ollama_models"}; ``gateways`` lists the gateway hosts.

    Returns {"placement": the placement with ports, "engines": {host: {engine: [role instance,
    ...]}}, "gateways": {gateway: {"routes": {served name: ["address:port", ...]},
    "backend_keys": {served name: {"host", "variable"}}, "backends": {engine host:
    ["address:port", ...]}}}}. Raises :class:`EngineError`
    listing every problem."""
    nodes = nodes or {}
    placed = assign_ports(placement, port_base)
    items = model_items(models)
    engines, problems = {}, []
    for host, entry in sorted(placed.items()):
        by_engine = {}
        for inst in entry.get("instances", []):
            by_engine.setdefault(inst["engine"], []).append(inst)
        for name in ENGINES:
            if name not in by_engine:
                continue
            mapping = ENGINES[name].mapping
            instances, found = mapping.instances(by_engine[name], items, downloads, host)
            problems += found
            if not found:
                problems += mapping.check(instances, host, downloads, nodes.get(host) or {})
            engines.setdefault(host, {})[name] = instances
    keys, found = backend_keys(placed, nodes)
    problems += found
    routed = {}
    for gateway in sorted(set(gateways or ())):
        routes, backends, found = _gateway_targets(placed, gateway, nodes)
        problems += found
        routed[gateway] = {"routes": routes,
                           "backend_keys": {n: r for n, r in keys.items() if n in routes},
                           "backends": backends}
    if problems:
        raise EngineError(problems)
    return {"placement": placed, "engines": engines, "gateways": routed}
