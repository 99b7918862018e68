# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Inventory validation: unknown or misspelled variables, wrong types, string booleans, empty
groups, unusable or shared API keys. Pure logic, no Ansible; every message names the host,
the variable and the fix. Private to the collection."""

from __future__ import annotations

import difflib
import re

from ansible_collections.teamllm.stack.plugins.module_utils._engines import NAMES as _ENGINE_NAMES
from ansible_collections.teamllm.stack.plugins.module_utils._network import wide_problem

# Characters of a key as the gateway accepts it in `Authorization: Bearer <key>`.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~+/=-]{32,512}$")
_PLACEHOLDERS = re.compile(
    r"(change[-_]?me|changeit|replace[-_]?me|placeholder|example|secret|password|"
    r"your[-_]?key|todo|xxxx|dummy|test[-_]?key)",
    re.IGNORECASE,
)
_STRING_BOOLEANS = {"yes", "no", "true", "false", "on", "off", "y", "n", "1", "0"}
# The engines a model may name: the engine registry's, or "any".
ENGINES = (*_ENGINE_NAMES, "any")


def api_key_problem(key: object) -> str:
    """Why `key` cannot be an API key, or "" when it can."""
    if not isinstance(key, str) or not key:
        return "the key is empty"
    if len(key.encode()) < 32:
        return f"the key is {len(key.encode())} bytes long; at least 32 are needed"
    if not KEY_PATTERN.match(key):
        return "the key has characters outside A-Z a-z 0-9 . _ ~ + / = - or is over 512 long"
    if _PLACEHOLDERS.search(key):
        return "the key looks like a placeholder"
    if len(set(key)) < 8:
        return "the key repeats too few characters to be random"
    return ""


def validate_clients(clients: object, variable: str = "llm_api_clients") -> list[str]:
    """Problems with a list of API clients ({name, key}); keys are never quoted back."""
    fix = "generate keys with `openssl rand -base64 48` and keep them in a vault"
    if not isinstance(clients, list) or not clients:
        return [f"{variable} must be a non-empty list of {{name, key}}; {fix}"]
    errors: list[str] = []
    seen_keys: dict[str, str] = {}
    seen_names: set[str] = set()
    for i, client in enumerate(clients):
        if not isinstance(client, dict):
            errors.append(f"{variable}[{i}] must be a dict with name and key")
            continue
        name = client.get("name")
        label = f"{variable}[{i}] ({name})" if name else f"{variable}[{i}]"
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$", name):
            errors.append(f"{label}: name must be 1-64 of A-Z a-z 0-9 _ . @ -")
        elif name in seen_names:
            errors.append(f"{label}: the name {name!r} is used twice")
        else:
            seen_names.add(name)
        unknown = sorted(set(client) - {"name", "key", "rate_limit", "burst", "models"})
        if unknown:
            errors.append(f"{label}: unknown keys {', '.join(unknown)} (known: name, key, rate_limit, burst, models)")
        burst = client.get("burst")
        if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or burst < 0):
            errors.append(f"{label}: burst must be a whole number of 0 or more (requests let through at once)")
        problem = api_key_problem(client.get("key"))
        if problem:
            errors.append(f"{label}: {problem}; {fix}")
            continue
        key = client["key"]
        if key in seen_keys:
            errors.append(f"{label}: the same key is given to {seen_keys[key]}; every client needs its own key")
        else:
            seen_keys[key] = str(name)
    return errors


def _type_problem(value: object, spec: dict) -> str:
    kind = spec.get("type", "raw")
    if value is None:
        return ""
    if isinstance(value, str) and "{{" in value:
        return ""  # a template: its type is known only when it is rendered
    if kind == "bool":
        if isinstance(value, str) and value.lower() in _STRING_BOOLEANS:
            return f"is the string {value!r}; write a YAML boolean: true or false, unquoted"
        if not isinstance(value, bool):
            return f"must be true or false, not {type(value).__name__}"
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return f"must be an integer, not {type(value).__name__}"
        if isinstance(value, str) and not re.match(r"^-?\d+$", value.strip()):
            return f"must be an integer, not {value!r}"
    elif kind in ("list",):
        if not isinstance(value, list):
            return f"must be a list, not {type(value).__name__}"
    elif kind == "dict":
        if not isinstance(value, dict):
            return f"must be a dict, not {type(value).__name__}"
    elif kind in ("str", "path"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            return f"must be a string, not {type(value).__name__}"
    choices = spec.get("choices")
    if choices and value not in choices:
        return f"is {value!r}; choose one of {', '.join(map(str, choices))}"
    return ""


def validate_host(host: str, host_vars: dict, known: dict, prefixes: tuple[str, ...]) -> list[str]:
    """Problems with one host's inventory variables.

    `known` maps each documented variable to its argument spec (type, choices); `prefixes` are
    the collection's variable prefixes (role names + "llm_"). A variable with one of those
    prefixes that is not documented, or any variable within a typo of a documented one, is
    reported with the closest documented names.
    """
    errors: list[str] = []
    names = sorted(known)
    for var in sorted(host_vars):
        if var.startswith("_") or var.startswith("ansible_"):
            continue
        value = host_vars[var]
        if var in known:
            problem = _type_problem(value, known[var])
            if problem:
                errors.append(f"host {host}: {var} {problem}")
            continue
        close = difflib.get_close_matches(var, names, n=2, cutoff=0.8)
        if var.startswith(prefixes) or close:
            hint = f"did you mean {' or '.join(close)}?" if close else (
                "it is not a variable of this collection; see the role's meta/argument_specs.yml"
            )
            errors.append(f"host {host}: unknown variable {var}: {hint}")
    if "llm_api_clients" in host_vars:
        errors += [f"host {host}: {e}" for e in validate_clients(host_vars["llm_api_clients"])]
    allow_from = host_vars.get("llm_engine_allow_from")
    if isinstance(allow_from, list) and host_vars.get("llm_engine_allow_wide") is not True:
        problem = wide_problem(allow_from, host=f"host {host}")
        if problem:
            errors.append(problem)
    models = host_vars.get("llm_models")
    if isinstance(models, list):
        for i, model in enumerate(models):
            engine = model.get("engine", "any") if isinstance(model, dict) else None
            if engine not in ENGINES:
                errors.append(
                    f"host {host}: llm_models[{i}].engine is {engine!r}; "
                    f"choose one of {', '.join(ENGINES)}"
                )
    return errors


def validate_groups(groups: dict, required: list[str]) -> list[str]:
    """Required inventory groups that are missing or empty."""
    return [
        f"inventory group {g} is {'empty' if g in groups else 'missing'}: add at least one host to it"
        for g in required
        if not groups.get(g)
    ]
