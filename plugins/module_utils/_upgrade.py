# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Rolling updates of the llama.cpp instances' models and of the llama.cpp build
(playbooks/upgrade.yml): what changes on each host, the version record kept on the node, the gateway configuration with a host's
backends drained, the engine's in-flight requests, and the checks of the update's variables.
Pure Python, no Ansible; private to the collection."""

from __future__ import annotations

import re

# An upstream block of the gateway's nginx.conf and the `server` lines in it.
_UPSTREAM = re.compile(r"^\s*upstream\s+(\S+)\s*\{\s*$")
_SERVER = re.compile(r"^(\s*server\s+)(\S+)([^;]*);(.*)$")
_MAX_FAILS = re.compile(r"\bmax_fails=\d+")
# llama-server's /metrics gauges of requests being processed and waiting for a slot.
_IN_FLIGHT = re.compile(r"^llamacpp:(requests_processing|requests_deferred)(?:\{[^}]*\})?\s+(\S+)\s*$",
                        re.M)


class UpgradeError(ValueError):
    """A drain that would leave a model without a backend, or a configuration it cannot read."""


def mark_down(conf: str, backends) -> tuple[str, list[str]]:
    """(nginx.conf with each ``server <backend> ...;`` of an upstream block marked ``down``, the
    backends found). Raises :class:`UpgradeError` when an upstream would be left with no server
    up (nginx would answer 502 for its model): drain such a host only with another replica.

    When a drain leaves one server up in an upstream, that server gets ``max_fails=0``: nginx
    never takes a lone server out of an upstream of its own (max_fails and fail_timeout are
    ignored there), but beside a ``down`` one a single failed attempt would make it unavailable
    for fail_timeout, and every request of the model 502 for that long (seen under load)."""
    wanted = set(backends or ())
    lines, found, block = [], [], []
    upstream = None
    for line in conf.split("\n"):
        if upstream is None:
            match = _UPSTREAM.match(line)
            if match:
                upstream, block = match.group(1), []
            lines.append(line)
            continue
        if line.strip() == "}":
            lines.extend(_drained_block(upstream, block, wanted, found))
            upstream = None
            lines.append(line)
            continue
        block.append(line)
    if upstream is not None:
        raise UpgradeError(f"the upstream {upstream} is not closed")
    return "\n".join(lines), sorted(set(found))


def _drained_block(upstream, block, wanted, found):
    """The lines of one upstream block with ``wanted``'s servers marked down (see mark_down)."""
    servers = []  # (index in block, head, target, params, tail, down)
    for index, line in enumerate(block):
        match = _SERVER.match(line)
        if match:
            head, target, params, tail = match.groups()
            is_down = "down" in params.split()
            if target in wanted:
                found.append(target)
                if not is_down:
                    params += " down"
                    is_down = True
            servers.append([index, head, target, params, tail, is_down])
    up = [server for server in servers if not server[5]]
    if servers and not up:
        raise UpgradeError(f"draining {', '.join(sorted(wanted))} would leave the upstream "
                           f"{upstream} without a backend")
    if len(up) == 1 and len(servers) > 1 and any(s[2] in wanted for s in servers):
        params = up[0][3]
        up[0][3] = (_MAX_FAILS.sub("max_fails=0", params) if _MAX_FAILS.search(params)
                    else params + " max_fails=0")
    block = list(block)
    for index, head, target, params, tail, _down in servers:
        block[index] = f"{head}{target}{params};{tail}"
    return block


def in_flight(metrics: str) -> int:
    """Requests a llama-server is processing or holding for a slot, from its /metrics text."""
    return int(sum(float(value) for _name, value in _IN_FLIGHT.findall(metrics or "")))


def drain_problems(gateways: dict, host: str) -> list[str]:
    """Models that would have no backend left at a gateway while ``host``'s backends are
    drained. ``gateways`` maps each gateway to its published ``teamllm_gateway``."""
    problems = []
    for gateway, published in sorted((gateways or {}).items()):
        mine = set(((published or {}).get("backends") or {}).get(host) or ())
        for model, targets in sorted(((published or {}).get("routes") or {}).items()):
            if targets and set(targets) <= mine:
                problems.append(
                    f"{host} serves the only backend of {model} at gateway {gateway} "
                    f"({', '.join(targets)}): a rolling update takes it out of rotation, so "
                    f"{model} would be down; give it replicas: 2 in llm_models (another node "
                    "serves it meanwhile)")
    return problems


def plan_changes(instances, states, models=None, rollback=False, engine=None) -> dict:
    """What one host's update changes.

    ``instances`` are the host's llama.cpp instances in the deployment plan (``model`` is the
    inventory's download entry); ``states`` maps an instance name to its version record on the
    node (``{"current", "previous"}``, absent before its first update); ``models`` maps a
    served name (an instance's ``alias``) to the download entry to update it to; ``rollback``
    goes back to each record's ``previous`` instead. ``engine`` is the host's llama.cpp build:
    ``{"inventory": the llm_downloads entry the inventory installs (llama_cpp_download),
    "state": its version record on the node (or None), "to": the entry to update it to
    (upgrade_engines.llama_cpp, or None)}``; a host without instances has no engine to change.

    Returns ``{"before": instances as they run now, "after": instances as they will run,
    "changes": [{name, alias, from, to}], "engine": {engine, from, to} or None, "needed" (anything to do),
    "restart": names of the instances restarted (all of the host's when the engine changes),
    "from"/"to": the versions left and gone to, "summary": "<alias> (instance <name>) <from>
    -> <to>, ..., llama.cpp engine <from> -> <to>" for messages}``. Instances that do not change
    keep the model they run now (an earlier update's, not the inventory's)."""
    states = states or {}
    models = models or {}
    before, after, changes = [], [], []
    for inst in instances or []:
        state = states.get(inst["name"]) or {}
        current = state.get("current") or inst["model"]
        alias = inst.get("alias") or inst["name"]
        target = state.get("previous") if rollback else models.get(alias)
        target = target or current
        before.append(dict(inst, model=current))
        after.append(dict(inst, model=target))
        if target != current:
            changes.append({"name": inst["name"], "alias": alias, "from": current, "to": target})
    build = None
    if engine and before:
        state = engine.get("state") or {}
        current = state.get("current") or engine.get("inventory")
        target = (state.get("previous") if rollback else engine.get("to")) or current
        if current and target != current:
            build = {"engine": "llama_cpp", "from": current, "to": target}
    restart = [i["name"] for i in before] if build else [c["name"] for c in changes]
    parts = [f"{c['alias']} (instance {c['name']}) {c['from']} -> {c['to']}" for c in changes]
    if build:
        parts.append(f"llama.cpp engine {build['from']} -> {build['to']}")
    return {"before": before, "after": after, "changes": changes, "engine": build,
            "needed": bool(changes or build), "restart": restart,
            "from": _unique([c["from"] for c in changes] + ([build["from"]] if build else [])),
            "to": _unique([c["to"] for c in changes] + ([build["to"]] if build else [])),
            "summary": ", ".join(parts)}


def _unique(items: list) -> list:
    return list(dict.fromkeys(items))


def record(change: dict) -> dict:
    """The version record of an instance once ``change`` succeeded: the version it runs and the
    one before it (what a rollback returns to). A rollback is a change like any other."""
    return {"current": change["to"], "previous": change["from"]}


# The engines a rolling update can change (upgrade_engines' keys) and the archives their builds
# come as (the llama_cpp role unpacks them with unarchive).
ENGINES = ("llama_cpp",)
_BUILD_SUFFIXES = (".tar.gz", ".tgz")


def variable_problems(update: object, rollback: object, models: object, manifest,
                      engines: object = None) -> list[str]:
    """Problems of ``upgrade_models``, ``upgrade_engines`` and ``upgrade_rollback`` against
    ``llm_models`` and the download manifest, each naming the variable and the fix."""
    errors = _engine_problems(engines, rollback, manifest)
    if update in (None, {}):
        return errors
    if not isinstance(update, dict):
        return errors + ["upgrade_models must be a dict {served model name: download entry}"]
    if rollback is True:
        errors.append("upgrade_models and upgrade_rollback: true are both set: a run either "
                      "updates or rolls back; drop one of them")
    served = {}
    for model in models if isinstance(models, list) else []:
        if isinstance(model, dict) and model.get("name"):
            served[model["name"]] = model
    for name, entry in sorted(update.items(), key=lambda kv: str(kv[0])):
        model = served.get(name)
        if model is None:
            errors.append(f"upgrade_models.{name}: no model of llm_models is served as {name!r}; "
                          f"use one of {', '.join(sorted(served)) or '(none)'}")
            continue
        if model.get("engine") != "llama_cpp":
            errors.append(f"upgrade_models.{name}: its engine is {model.get('engine', 'any')!r}; "
                          "upgrade.yml updates llama.cpp models (engine: llama_cpp) only; update "
                          "others with site.yml")
        if not isinstance(entry, str) or not entry:
            errors.append(f"upgrade_models.{name} must name an entry of llm_downloads")
            continue
        if isinstance(manifest, dict):
            found = manifest.get(entry)
            if not isinstance(found, dict):
                errors.append(f"upgrade_models.{name} names {entry!r}, which is not an entry of "
                              "llm_downloads: add it to llm_model_downloads (docs/downloads.md)")
            elif not str(found.get("path", "")).endswith(".gguf"):
                errors.append(f"upgrade_models.{name}: {entry!r} is not a GGUF file (its path is "
                              f"{found.get('path')!r}); llama.cpp serves .gguf files")
    return errors


def _engine_problems(engines: object, rollback: object, manifest) -> list[str]:
    if engines in (None, {}):
        return []
    if not isinstance(engines, dict):
        return ["upgrade_engines must be a dict {engine: download entry of its new build}, e.g. "
                '{"llama_cpp": "llama_server_cpu"}']
    errors = []
    if rollback is True:
        errors.append("upgrade_engines and upgrade_rollback: true are both set: a run either "
                      "updates or rolls back; drop one of them")
    for engine, entry in sorted(engines.items(), key=lambda kv: str(kv[0])):
        if engine not in ENGINES:
            errors.append(f"upgrade_engines.{engine}: upgrade.yml updates the builds of "
                          f"{', '.join(ENGINES)} only; update other engines with site.yml")
            continue
        if not isinstance(entry, str) or not entry:
            errors.append(f"upgrade_engines.{engine} must name an entry of llm_downloads "
                          "(a build of the engine)")
            continue
        if not isinstance(manifest, dict):
            continue
        found = manifest.get(entry)
        if not isinstance(found, dict):
            errors.append(f"upgrade_engines.{engine} names {entry!r}, which is not an entry of "
                          "llm_downloads: add it to llm_model_downloads with its sha256 "
                          "(docs/downloads.md)")
        elif not str(found.get("path", "")).endswith(_BUILD_SUFFIXES):
            errors.append(f"upgrade_engines.{engine}: {entry!r} is not a build archive (its path "
                          f"is {found.get('path')!r}); a llama.cpp build is a .tar.gz holding "
                          "bin/llama-server")
    return errors


# --- The gateway's configuration sets with backends drained -------------------------------
# The gateway role writes each configuration as a set (a directory of /etc/nginx/teamllm.d named
# by its content, checked whole by nginx -t, marked, then made live by one switch of the link
# /etc/nginx/teamllm). A drained set is derived from the role's live set the same way: its
# files copied into a set of its own (their references to their directory rewritten), the
# backends marked `down` in its nginx.conf, checked with nginx -t, marked, switched in. It
# records the set it came from, so putting the backends back switches to that very set (what
# the role wrote: a later site.yml run changes nothing) and drains of several hosts add up.
DRAIN_RECORD = ".drain.json"
_CONF = "nginx.conf"


def _read_record(path):
    import json
    import os

    record = os.path.join(path, DRAIN_RECORD)
    if not os.path.exists(record):
        return path, []
    with open(record, encoding="utf-8") as f:
        data = json.load(f)
    return data["from"], sorted(data["backends"])


def drain_set_name(original: str, backends) -> str:
    """The drained set's directory name: the set it comes from and the backends it drains."""
    import hashlib
    import json

    key = json.dumps([original, sorted(backends)]).encode()
    return "drain-" + hashlib.sha256(key).hexdigest()[:16]


def _build_drained(original: str, target: str, backends, marker: str, nginx_test) -> None:
    import json
    import os
    import shutil

    # refused before anything is written when an upstream would be left without a backend
    mark_down(_read_text(os.path.join(original, _CONF)), backends)
    shutil.rmtree(target, ignore_errors=True)
    os.mkdir(target)
    try:
        st = os.stat(original)
        os.chown(target, st.st_uid, st.st_gid)
        os.chmod(target, st.st_mode & 0o7777)
        for name in sorted(os.listdir(original)):
            src = os.path.join(original, name)
            if name in (marker, DRAIN_RECORD) or not os.path.isfile(src):
                continue
            with open(src, "rb") as f:
                data = f.read().replace(original.encode(), target.encode())
            if name == _CONF:
                data = mark_down(data.decode(), backends)[0].encode()
            dest = os.path.join(target, name)
            with open(dest, "wb") as f:
                f.write(data)
            fst = os.stat(src)
            os.chown(dest, fst.st_uid, fst.st_gid)
            os.chmod(dest, fst.st_mode & 0o7777)
        with open(os.path.join(target, DRAIN_RECORD), "w", encoding="utf-8") as f:
            json.dump({"from": original, "backends": sorted(backends)}, f)
        rc, err = nginx_test(os.path.join(target, _CONF))
        if rc != 0:
            raise UpgradeError(f"the drained gateway configuration fails nginx -t ({err.strip()}); "
                               "nothing was switched: the live set keeps serving")
        with open(os.path.join(target, marker), "w", encoding="utf-8") as f:
            f.write("nginx -t passed\n")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def switch_drain(link: str, backends, state: str, marker: str, nginx_test, check_mode=False) -> dict:
    """Drain ``backends`` (``state`` "drained") or put them back ("active") at the gateway whose
    live set is the link ``link``. ``nginx_test(conf)`` returns (rc, stderr) of ``nginx -t -c``.
    Returns {changed, before, after (the drained backends), set (the live set's path)}."""
    import os
    import shutil

    if not os.path.islink(link):
        raise UpgradeError(f"{link} is not the link to a checked configuration set: converge the "
                           "gateway with site.yml first")
    live = os.path.realpath(link)
    original, drained = _read_record(live)
    requested = set(backends or ())
    want = sorted(set(drained) | requested if state == "drained" else set(drained) - requested)
    result = {"changed": want != drained, "before": drained, "after": want, "set": live}
    if not result["changed"]:
        return result
    if want:
        target = os.path.join(os.path.dirname(original), drain_set_name(original, want))
        if check_mode:
            mark_down(_read_text(os.path.join(original, _CONF)), want)
        elif not os.path.exists(os.path.join(target, marker)):
            _build_drained(original, target, want, marker, nginx_test)
    else:
        target = original
        if not os.path.exists(os.path.join(target, marker)):
            raise UpgradeError(f"the configuration set {target} the gateway was drained from is "
                               "gone: run site.yml (the gateway role writes it again)")
    result["set"] = target
    if check_mode:
        return result
    tmp = link + ".drain-tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    if live != original and live != target:
        shutil.rmtree(live, ignore_errors=True)
    return result


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()
