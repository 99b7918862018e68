# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Inventory validation: every value the controller can check before any host is contacted.

Unknown or misspelled variables; types and choices against the roles' argument specs (through
Ansible's own ``ArgumentSpecValidator``); ranges, sizes and times (``RANGES``, ``PATTERNS``:
argument specs have no minimum or maximum); groups; API clients and keys (``_api_keys``);
the download manifest and the mirror URL (``_downloads``); ``llm_models`` (the placement's own
input checks); a rolling update's ``upgrade_models`` (``_upgrade``); Open WebUI's client and
first administrator; the backup's repositories. Every message names the host, the variable and
the fix; no message quotes a secret. Private to the collection; needs ansible-core's ``module_utils`` only.

Why a strict type table runs before ``ArgumentSpecValidator``: the validator converts what a
module argument given as ``k=v`` text may hold, and accepts (measured with ansible-core 2.19,
pinned by ``test_argument_spec_validator_is_lenient``) ``"yes"``/``"no"``/``1`` for a bool,
``true`` for an int, a list, a dict or a bool for a str, ``"a,b"`` for a list and ``"k=v"``
for a dict. A role's argument validation checks but does not convert the variables, so the
templates would get the string ``"no"`` (true in a condition) or iterate ``"a,b"`` character by
character. ``_STRICT`` refuses those before the validator sees them; the validator does the
rest (int and float conversion, choices, list elements).
"""

from __future__ import annotations

import difflib
import ipaddress
import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.teamllm.stack.plugins.module_utils import _downloads, _upgrade
from ansible_collections.teamllm.stack.plugins.module_utils._api_keys import (  # noqa: F401 (re-exported)
    GENERATE,
    api_key_problem,
    validate_clients,
)
from ansible_collections.teamllm.stack.plugins.module_utils._engines import NAMES as _ENGINE_NAMES
from ansible_collections.teamllm.stack.plugins.module_utils._engines import placement_models
from ansible_collections.teamllm.stack.plugins.module_utils._network import wide_problem
from ansible_collections.teamllm.stack.plugins.module_utils._placement.inputs import (
    PlacementInputError,
    normalize_models,
)

_STRING_BOOLEANS = {"yes", "no", "true", "false", "on", "off", "y", "n", "1", "0", "t", "f"}
# The engines a model may name: the engine registry's, or "any".
ENGINES = (*_ENGINE_NAMES, "any")
REQUIRED_GROUPS = ("gateway", "llm_nodes")
# Variables holding secrets (or lists of them) besides those whose spec says no_log: their
# values are never quoted.
_SECRET_NAME = re.compile(r"(^|_)(key|keys|password|secret|token|clients)$")

_WORDS = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
          "path": "a path (a string)", "list": "a list", "dict": "a dict"}
# What each argument-spec type accepts as written in the inventory (see the module docstring).
_STRICT = {
    "bool": (bool,),
    "int": (int, str),
    "float": (int, float, str),
    "str": (str, int, float),
    "path": (str,),
    "list": (list,),
    "dict": (dict,),
}


class Range:
    """Inclusive bounds of a number (``above``: the lower bound itself is excluded)."""

    def __init__(self, low, high=None, what="", above=False):
        self.low, self.high, self.what, self.above = low, high, what, above

    def problem(self, value) -> str:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return ""  # the type check reports it
        low_ok = number > self.low if self.above else number >= self.low
        if low_ok and (self.high is None or number <= self.high):
            return ""
        if self.high is None:
            bound = f"above {self.low}" if self.above else f"{self.low} or more"
        elif self.above:
            bound = f"above {self.low} and at most {self.high}"
        else:
            bound = f"from {self.low} to {self.high}"
        return f"is {value!r}; use {bound}" + (f" ({self.what})" if self.what else "")


_PORT = Range(1, 65535, "a TCP port")
_SECONDS = Range(1, None, "seconds")
_COUNT = Range(1, None)
# Ranges of numbers. "var.key" is a key of a dict variable, "var[].key" a key of each item of a
# list variable. Every name is a documented variable (a unit test checks it).
RANGES = {
    "gateway_https_port": _PORT,
    "gateway_http_port": _PORT,
    "gateway_webui_port": _PORT,
    "open_webui_port": _PORT,
    "ollama_server.port": _PORT,
    "llm_engine_port_base": Range(1024, 65000, "engines run as unprivileged users; instances take "
                                  "the ports from it upwards"),
    "gateway_rate_limit_per_key": Range(1, None, "requests per second"),
    "gateway_rate_limit_burst": Range(1, None, "requests let through at once; nginx refuses 0"),
    "gateway_unauthorized_rate_limit": Range(1, None, "401 answers per second and address"),
    "gateway_unauthorized_burst": Range(1, None, "requests; nginx refuses 0"),
    "gateway_acme_renew_days": Range(1, 89, "days before expiry; ACME certificates last 90"),
    "gateway_hsts_max_age": Range(1, None, "seconds; 0 would tell browsers to drop HSTS"),
    "llama_cpp_health_timeout": _SECONDS,
    "upgrade_drain_timeout": _SECONDS,
    "upgrade_health_timeout": _SECONDS,
    "localai_health_timeout": _SECONDS,
    "ollama_health_timeout": _SECONDS,
    "ollama_model_timeout": _SECONDS,
    "open_webui_health_timeout": _SECONDS,
    "vllm_health_timeout": _SECONDS,
    "nvidia_driver_reboot_timeout": _SECONDS,
    "ollama_max_queue": Range(1, None, "requests"),
    "vllm_cpu_kvcache_gib": Range(1, None, "GiB"),
    "llm_cpu_ram_gib": Range(0, None, "GiB; 0 reads it from the host"),
    "llm_gpu_reserve_gib": Range(0, None, "GiB"),
    "backup_check_subsets": Range(1, None, "each check reads 1/N of the repository's data"),
}
for _rule in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
    RANGES[f"backup_retention.{_rule}"] = Range(0, None, "snapshots kept by this rule; 0 turns it off")
for _engine in ("llama_cpp", "localai", "vllm"):
    RANGES[f"{_engine}_instances[].port"] = _PORT
for _engine in ("llama_cpp", "localai"):
    for _where in (f"{_engine}_instance_defaults.", f"{_engine}_instances[]."):
        RANGES[_where + "context"] = Range(1, None, "tokens")
        RANGES[_where + "parallel"] = Range(1, None, "slots")
        RANGES[_where + "threads"] = Range(0, None, "0: all cores")
for _where in ("vllm_instance_defaults.", "vllm_instances[]."):
    RANGES[_where + "gpu_memory_utilization"] = Range(0, 1, "a fraction of each GPU's memory",
                                                      above=True)
    RANGES[_where + "max_model_len"] = Range(1, None, "tokens")
    RANGES[_where + "max_num_seqs"] = Range(1, None, "sequences")

_NGINX_SIZE = r"[1-9][0-9]*[kKmMgG]?"
_NGINX_TIME = r"[1-9][0-9]*(ms|s|m|h|d)?"
# Strings with a format: (pattern matched in full, what is expected).
PATTERNS = {
    "gateway_client_max_body_size": (_NGINX_SIZE, "an nginx size such as 1m or 512k (0 would turn the limit off)"),
    "gateway_webui_client_max_body_size": (_NGINX_SIZE, "an nginx size such as 100m"),
    "gateway_access_log_buffer": (r"([1-9][0-9]{0,5}[km]?)?", "empty or an nginx size such as 64k"),
    "gateway_proxy_read_timeout": (_NGINX_TIME, "an nginx time such as 900s or 15m"),
    "gateway_webui_proxy_read_timeout": (_NGINX_TIME, "an nginx time such as 3600s or 1h"),
    "gateway_access_log_flush": (r"[1-9][0-9]{0,4}(ms|s|m)", "an nginx time such as 1s or 500ms"),
    "ollama_keep_alive": (r"-1|0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+",
                          "-1 (always), 0 or a Go duration such as 5m or 24h"),
    "gateway_webui_upstream": (r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}|",
                               '"host:port" of Open WebUI, or empty'),
    "gateway_acme_directory": (r"https://\S+", "an https:// URL"),
}
# Addresses: variable -> (what it holds, empty allowed).
ADDRESSES = {
    "llm_engine_bind_address": ("an IP address of the node", False),
    "llm_gateway_address": ("an IP address of the gateway", True),
    "llama_cpp_bind_address": ("an IP address of the node", False),
    "localai_bind_address": ("an IP address of the node", False),
    "ollama_bind_address": ("an IP address of the node", False),
    "vllm_bind_address": ("an IP address of the node", False),
    "open_webui_bind_address": ("an IP address of the node", False),
}
# Keys of an engine of its own (the gateway presents them to the backend).
ENGINE_KEYS = ("vllm_api_key", "localai_api_key")


def is_template(value: object) -> bool:
    """A value still holding Jinja (it could not be rendered on the controller)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def is_secret(name: str, spec: dict | None = None) -> bool:
    return bool((spec or {}).get("no_log")) or bool(_SECRET_NAME.search(name))


def _clean_spec(spec: dict) -> dict:
    """The parts of a role's argument spec that ArgumentSpecValidator reads for a value that is
    present: no default (the role's, often a template), no required (checked elsewhere)."""
    clean = {k: spec[k] for k in ("type", "elements", "choices", "no_log") if k in spec}
    if isinstance(spec.get("options"), dict):
        clean["options"] = {name: _clean_spec(sub) for name, sub in spec["options"].items()}
    return clean


def _strict_problem(value: object, kind: str) -> str:
    if kind == "bool" and isinstance(value, str) and value.strip().lower() in _STRING_BOOLEANS:
        return f"is the string {value!r}; write a YAML boolean: true or false, unquoted"
    accepted = _STRICT.get(kind)
    if accepted is None:  # raw, or a type this table does not know: the validator decides
        return ""
    if isinstance(value, bool) and bool not in accepted:
        return f"must be {_WORDS[kind]}, not a boolean"
    if not isinstance(value, accepted):
        return f"must be {_WORDS[kind]}, not {type(value).__name__}"
    return ""


def value_problem(var: str, value: object, spec: dict) -> str:
    """Why ``value`` does not fit the argument spec of ``var`` (type, choices, elements), or ""."""
    if value is None or is_template(value):
        return ""
    kind = spec.get("type", "raw")
    secret = is_secret(var, spec)
    problem = _strict_problem(value, kind)  # quotes no value but a string boolean
    if problem:
        return problem
    elements = spec.get("elements")
    if kind == "list" and elements in _STRICT:
        for i, item in enumerate(value):
            item_problem = "" if is_template(item) else _strict_problem(item, elements)
            if item_problem:
                return f"[{i}] {item_problem}"
    result = ArgumentSpecValidator({var: _clean_spec(spec)}).validate({var: value})
    for error in result.errors.errors:
        name = type(error).__name__
        if name == "ArgumentValueError" and spec.get("choices"):
            choices = ", ".join(map(str, spec["choices"]))
            return f"is not one of {choices}" if secret else f"is {value!r}; choose one of {choices}"
        if name == "ArgumentTypeError" and kind in _WORDS and "Elements" not in error.msg:
            return f"must be {_WORDS[kind]}" + ("" if secret else f", not {value!r}")
        return "is malformed (value not shown)" if secret else f"is malformed: {error.msg}"
    return ""


def _paths(ranges: dict) -> dict:
    """RANGES indexed by variable: {var: [(path below it, Range)]}; "[]" steps into list items."""
    index: dict = {}
    for name, bound in ranges.items():
        var, rest = re.match(r"([A-Za-z0-9_]+)(.*)", name).groups()
        path = [step.lstrip(".") for step in re.findall(r"\[\]|\.[^.\[]+", rest)]
        index.setdefault(var, []).append((path, bound))
    return index


_RANGES_BY_VARIABLE = _paths(RANGES)


def _at(value: object, path: list[str]):
    """(label suffix, value) pairs reached by a RANGES path below a variable's value."""
    if not path:
        yield "", value
        return
    step, rest = path[0], path[1:]
    if step == "[]":
        if isinstance(value, list):
            for i, item in enumerate(value):
                for label, found in _at(item, rest):
                    yield f"[{i}]{label}", found
    elif isinstance(value, dict) and step in value:
        for label, found in _at(value[step], rest):
            yield f".{step}{label}", found


def range_problems(var: str, value: object) -> list[str]:
    """Numbers out of range and strings out of format in ``var``'s value (RANGES, PATTERNS,
    ADDRESSES)."""
    problems = []
    for path, bound in _RANGES_BY_VARIABLE.get(var, []):
        for label, found in _at(value, path):
            if found is None or is_template(found) or isinstance(found, bool):
                continue
            problem = bound.problem(found)
            if problem:
                problems.append(f"{var}{label} {problem}")
    if var in PATTERNS and isinstance(value, (str, int)) and not is_template(value):
        pattern, what = PATTERNS[var]
        if not re.fullmatch(pattern, str(value)):
            problems.append(f"{var} is {str(value)!r}; use {what}")
    if var in ADDRESSES and isinstance(value, str) and not is_template(value):
        what, empty_ok = ADDRESSES[var]
        if not (empty_ok and value == ""):
            try:
                ipaddress.ip_address(value)
            except ValueError:
                problems.append(f"{var} is {value!r}; use {what}")
    if var == "llm_engine_allow_from" and isinstance(value, list):
        for i, item in enumerate(value):
            try:
                ipaddress.ip_network(str(item), strict=False)
            except ValueError:
                problems.append(f"{var}[{i}] is {item!r}; use an address or a network such as 10.0.0.0/24")
    return problems


def _variable_problems(host_vars: dict, known: dict, prefixes: tuple[str, ...]) -> list[str]:
    errors: list[str] = []
    names = sorted(known)
    for var in sorted(host_vars):
        if var.startswith("_") or var.startswith("ansible_"):
            continue
        value = host_vars[var]
        if var in known:
            problem = value_problem(var, value, known[var])
            if problem:
                errors.append(f"{var} {problem}" if not problem.startswith("[") else f"{var}{problem}")
            else:
                errors += range_problems(var, value)
            continue
        close = difflib.get_close_matches(var, names, n=2, cutoff=0.8)
        if var.startswith(prefixes) or close:
            hint = f"did you mean {' or '.join(close)}?" if close else (
                "it is not a variable of this collection; see the role's meta/argument_specs.yml"
            )
            errors.append(f"unknown variable {var}: {hint}")
    return errors


def _client_problems(host_vars: dict, host_groups: tuple[str, ...]) -> list[str]:
    errors = []
    given = [v for v in ("llm_api_clients", "gateway_clients") if host_vars.get(v) is not None]
    for variable in given:
        if not is_template(host_vars[variable]):
            errors += validate_clients(host_vars[variable], variable)
    if not given and "gateway" in host_groups:
        errors.append(f"llm_api_clients is not set, but this host is a gateway and needs at least "
                      f"one client: add llm_api_clients: [{{name: <client>, key: <key>}}] "
                      f"({GENERATE})")
    for var in ENGINE_KEYS:
        key = host_vars.get(var)
        if key and isinstance(key, str) and not is_template(key):
            problem = api_key_problem(key)
            if problem:
                errors.append(f"{var}: {problem}; {GENERATE}")
    backend = host_vars.get("gateway_backend_keys")
    if isinstance(backend, dict):
        for model, key in sorted(backend.items(), key=lambda kv: str(kv[0])):
            problem = "" if is_template(key) else api_key_problem(key)
            if problem:
                errors.append(f"gateway_backend_keys.{model}: {problem}; {GENERATE}")
    return errors


def _webui_problems(host_vars: dict, host_groups: tuple[str, ...]) -> list[str]:
    """Open WebUI's first administrator and its own gateway client, on hosts of the group webui."""
    if "webui" not in host_groups:
        return []
    errors = []
    email = host_vars.get("open_webui_admin_email", "")
    if not is_template(email) and not re.fullmatch(r"[^@\s]+@[^@\s]+", str(email or "")):
        errors.append(f"open_webui_admin_email is {email!r}; set the e-mail address of Open WebUI's "
                      "first administrator")
    password = host_vars.get("open_webui_admin_password", "")
    if not is_template(password) and (not isinstance(password, str) or len(password) < 12):
        errors.append("open_webui_admin_password is missing or shorter than 12 characters (not "
                      "shown): set the first administrator's password and keep it in a vault")
    client = host_vars.get("open_webui_api_client", "open-webui")
    clients = host_vars.get("llm_api_clients") or []
    if host_vars.get("open_webui_api_key") is None and isinstance(clients, list) \
            and not is_template(client) and not is_template(clients) \
            and client not in [c.get("name") for c in clients if isinstance(c, dict)]:
        errors.append(f"llm_api_clients has no client named {client!r} (open_webui_api_client), "
                      f"Open WebUI's own key at the gateway: add {{name: {client}, key: <key>}} "
                      f"({GENERATE})")
    return errors


_BACKUP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_BACKUP_LOCATION = re.compile(r"/\S*|sftp:[^:\s]+:\S+|s3:\S+")


def _backup_problems(host_vars: dict, host_groups: tuple[str, ...]) -> list[str]:
    """The restic repositories of a host of the group backup (passwords never quoted)."""
    if "backup" not in host_groups:
        return []
    repos = host_vars.get("backup_repositories")
    if is_template(repos):
        return []
    if not isinstance(repos, list) or not repos:
        return ["backup_repositories is empty, but this host is in the group backup: add at least "
                "one {name: <name>, repository: <path, sftp:user@host:/path or s3:https://host/bucket>, "
                "password: <from a vault>} (docs/backup.md)"]
    errors, names, sftp = [], [], False
    for i, repo in enumerate(repos):
        where = f"backup_repositories[{i}]"
        if not isinstance(repo, dict):
            errors.append(f"{where} is not a dict: give {{name, repository, password}}")
            continue
        unknown = sorted(set(repo) - {"name", "repository", "password", "env"})
        if unknown:
            errors.append(f"{where} has unknown keys {', '.join(map(str, unknown))}: use name, repository, password, env")
        name = repo.get("name")
        if not isinstance(name, str) or not _BACKUP_NAME.fullmatch(name):
            errors.append(f"{where}.name is {name!r}; use lower-case letters, digits, - and _")
        elif name in names:
            errors.append(f"{where}.name {name!r} is used twice; give each repository its own name")
        names.append(name)
        location = repo.get("repository")
        if not is_template(location) and (not isinstance(location, str) or not _BACKUP_LOCATION.fullmatch(location)):
            errors.append(f"{where}.repository is {location!r}; use an absolute path, sftp:user@host:/path "
                          "or s3:https://host/bucket")
        sftp = sftp or (isinstance(location, str) and location.startswith("sftp:"))
        password = repo.get("password")
        if not is_template(password) and (not isinstance(password, str) or len(password) < 12):
            errors.append(f"{where}.password is missing or shorter than 12 characters (not shown): set "
                          "the repository's password and keep it in a vault")
        env = repo.get("env", {})
        if not isinstance(env, dict) or any(not re.fullmatch(r"[A-Z_][A-Z0-9_]*", str(k)) or "\n" in str(v)
                                            for k, v in env.items()):
            errors.append(f"{where}.env must be a dict of environment variables (e.g. AWS_ACCESS_KEY_ID), "
                          "values on one line (not shown)")
    if sftp:
        for var in ("backup_sftp_private_key", "backup_sftp_known_hosts"):
            value = host_vars.get(var)
            if not is_template(value) and not (isinstance(value, str) and value.strip()):
                errors.append(f"{var} is empty, but an SFTP repository is configured: set it "
                              "(the host's key is pinned; StrictHostKeyChecking is never turned off)")
    retention = host_vars.get("backup_retention")
    if isinstance(retention, dict) and not is_template(retention) and retention and \
            not any(str(v).isdigit() and int(v) > 0 for v in retention.values()):
        errors.append("backup_retention keeps no snapshot: set at least one of last, hourly, daily, "
                      "weekly, monthly, yearly above 0")
    return errors


def _model_problems(models: object, manifest: dict | None, own: dict, all_hosts) -> list[str]:
    """Unknown engines; what the placement refuses of its input (run here, before any host is
    contacted); downloads that name no entry, or an entry whose sha256 is not recorded (the
    inventory's own entries are checked with llm_model_downloads)."""
    if not isinstance(models, list) or not models:
        return []
    errors = []
    for i, model in enumerate(models):
        engine = model.get("engine", "any") if isinstance(model, dict) else "any"
        if engine not in ENGINES:
            errors.append(f"llm_models[{i}].engine is {engine!r}; choose one of {', '.join(ENGINES)}")
    if errors:
        return errors
    try:
        normalize_models(placement_models(models), set(all_hosts), _ENGINE_NAMES)
    except PlacementInputError as exc:
        errors.append(f"llm_models: {exc}")
    for i, model in enumerate(models):
        download = model.get("download") if isinstance(model, dict) else None
        names = list(download.values()) if isinstance(download, dict) else [download] if download else []
        for name in names:
            if is_template(name) or manifest is None or name in own:
                continue
            if name not in manifest:
                errors.append(f"llm_models[{i}].download names {name!r}, which is not an entry of "
                              "llm_downloads: add it to llm_model_downloads (docs/downloads.md)")
                continue
            entry = manifest[name] if isinstance(manifest[name], dict) else {}
            problem = _downloads.sha256_problem(name, entry.get("sha256"), "llm_model_downloads")
            if problem:
                errors.append(f"llm_models[{i}].download: {problem}")
    return errors


def _download_problems(host_vars: dict, collection: dict | None) -> tuple[list[str], dict | None]:
    """Problems of the inventory's manifest entries, of the mirror settings and of the offline
    settings; and the manifest the roles will read on this host (None when it is a template
    that could not be rendered)."""
    errors = []
    own = host_vars.get("llm_model_downloads")
    if isinstance(own, dict):
        for name in sorted(own, key=str):
            errors += _downloads.entry_problems(str(name), own[name], variable="llm_model_downloads")
    manifest = host_vars.get("llm_downloads")
    if manifest is None or is_template(manifest):
        base = host_vars.get("llm_downloads_collection", collection)
        manifest = None if not isinstance(base, dict) else {
            **base, **(own if isinstance(own, dict) else {})}
    elif isinstance(manifest, dict):
        for name in sorted(manifest, key=str):
            errors += _downloads.entry_problems(str(name), manifest[name], needed=False)
    source = host_vars.get("llm_artifact_source", "upstream")
    mirror = host_vars.get("llm_mirror_url", "")
    if not is_template(mirror):
        problem = _downloads.mirror_url_problem(mirror)
        if problem:
            errors.append(problem)
        elif source == "mirror" and not mirror:
            errors.append("llm_artifact_source is 'mirror' but llm_mirror_url is empty: set it to "
                          "the mirror's https:// base URL (or the bundle's path on the nodes)")
    if source == "controller" and not host_vars.get("llm_artifacts_dir"):
        errors.append("llm_artifact_source is 'controller' but llm_artifacts_dir is empty: set it "
                      "to the mirror directory on the controller")
    errors += _offline_problems(host_vars, source)
    return errors, manifest if isinstance(manifest, dict) else None


def _offline_problems(host_vars: dict, source: object) -> list[str]:
    """``llm_offline`` needs every artifact from the signed bundle: the mirror as the source
    (it also serves the bundle's apt repository), the bundle's public key on the controller,
    and no Ollama registry pulls."""
    errors = []
    offline = host_vars.get("llm_offline", False) is True
    key = host_vars.get("llm_bundle_public_key", "")
    if offline:
        if source != "mirror" and not is_template(source):
            errors.append(f"llm_offline is true but llm_artifact_source is {source!r}: set "
                          "llm_artifact_source: mirror and llm_mirror_url to the bundle (the "
                          "mirror role's https:// URL, or the bundle's path on the nodes); an "
                          "offline node installs only from the signed bundle")
        if host_vars.get("ollama_model_source") == "registry":
            errors.append("llm_offline is true but ollama_model_source is 'registry' (Ollama's "
                          "registry is on the internet): remove it so the models come from the "
                          "bundle (mirror), or set llm_offline: false")
        if not key:
            errors.append("llm_offline is true but llm_bundle_public_key is empty: set it to the "
                          "bundle's public key on the controller (<llm_bundle_key_dir>/"
                          "teamllm-bundle.pub.gpg, written by playbooks/mirror.yml); nodes "
                          "install only what a manifest signed by that key lists")
    if key and isinstance(key, str) and not is_template(key):
        if not key.strip():
            errors.append("llm_bundle_public_key is blank: set it to the bundle's public key "
                          "file on the controller")
    return errors


def host_problems(host_vars: dict, known: dict, prefixes: tuple[str, ...], *,
                  groups=(), collection_downloads: dict | None = None, all_hosts=()) -> list[str]:
    """Problems with one host's inventory variables, each "<variable> ... <fix>".

    ``known`` maps each documented variable to its argument spec; ``prefixes`` are the
    collection's variable prefixes (role names + "llm_"): a variable with one of them that is
    not documented, or any variable within a typo of a documented one, is reported with the
    closest documented names. ``groups`` are the host's groups (a gateway needs clients);
    ``collection_downloads`` is the collection's manifest (llm_downloads_collection), to which
    the inventory's llm_model_downloads are added; ``all_hosts`` are the hosts a model may pin.
    """
    errors = _variable_problems(host_vars, known, prefixes)
    if host_vars.get("llm_engine_allow_wide") is not True:
        for var in ("llm_engine_allow_from", "llm_monitoring_allow_from"):
            if isinstance(host_vars.get(var), list):
                errors += [problem for problem in [wide_problem(host_vars[var], variable=var)] if problem]
    errors += _client_problems(host_vars, tuple(groups))
    errors += _webui_problems(host_vars, tuple(groups))
    errors += _backup_problems(host_vars, tuple(groups))
    download_errors, manifest = _download_problems(host_vars, collection_downloads)
    errors += download_errors
    models = host_vars.get("llm_models")
    own = host_vars.get("llm_model_downloads")
    if not is_template(models):
        errors += _model_problems(models, manifest, own if isinstance(own, dict) else {}, all_hosts)
        update = host_vars.get("upgrade_models")
        engines = host_vars.get("upgrade_engines")
        if not is_template(update) and not is_template(engines):
            errors += _upgrade.variable_problems(update, host_vars.get("upgrade_rollback"), models,
                                                 manifest, engines)
    return errors


def validate_host(host: str, host_vars: dict, known: dict, prefixes: tuple[str, ...],
                  **kwargs) -> list[str]:
    """``host_problems``, each line starting "host <host>: "."""
    kwargs.setdefault("all_hosts", (host,))
    return [f"host {host}: {e}" for e in host_problems(host_vars, known, prefixes, **kwargs)]


def validate_groups(groups: dict, required=REQUIRED_GROUPS) -> list[str]:
    """Required inventory groups that are missing or empty."""
    return [
        f"inventory group {g} is {'empty' if g in groups else 'missing'}: add at least one host to it"
        for g in required
        if not groups.get(g)
    ]


def merge_hosts(problems: list[tuple[str, str]], checked=()) -> list[str]:
    """One line per problem, naming the hosts that have it: a group variable is reported once
    ("hosts a, b: ..." or "every host: ..." when it is all of ``checked``), not once per host."""
    by_text: dict[str, list[str]] = {}
    for host, text in problems:
        by_text.setdefault(text, []).append(host)
    lines = []
    for text, hosts in by_text.items():
        if len(hosts) == 1:
            lines.append(f"host {hosts[0]}: {text}")
        elif len(checked) > 1 and set(hosts) >= set(checked):
            lines.append(f"every host: {text}")
        else:
            lines.append(f"hosts {', '.join(hosts)}: {text}")
    return lines
