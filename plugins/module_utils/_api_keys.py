# Copyright: teamllm.stack contributors
# Apache License 2.0
"""API key hygiene: why a string cannot be a bearer key, and the checks of a list of clients.
Pure logic, no Ansible; no message ever quotes a key. Private to the collection.

A key must be 32 to 512 characters of the set the gateway accepts after ``Bearer `` (matched
to the end of the string with ``\\Z``: ``$`` would accept a trailing newline, which the
gateway would then hash with the newline and never match), must not look like a placeholder,
and must hold at least 128 bits by a simple estimate: the characters that cannot be predicted
from the ones before them (not the third or later of a run such as ``aaa``, ``abc`` or
``321``, not inside a repeat of an earlier block of 3 or more), each worth log2 of the size
of the character classes the key uses (26 lower, 26 upper, 10 digits, 7 symbols).
``openssl rand -base64 48`` gives 64 characters, about 390 bits by this estimate (384 real).
"""

from __future__ import annotations

import math
import re
import unicodedata

MIN_BYTES = 32
MAX_BYTES = 512
MIN_BITS = 128
CHARACTERS = "A-Z a-z 0-9 . _ ~ + / = -"
GENERATE = "generate one with `openssl rand -base64 48` and keep it in a vault"
_KEY = re.compile(r"[A-Za-z0-9._~+/=-]+\Z")
_SYMBOLS = "._~+/=-"
_CLASSES = (
    (str.islower, 26),
    (str.isupper, 26),
    (str.isdigit, 10),
    (lambda c: c in _SYMBOLS, len(_SYMBOLS)),
)
# Words of 5 letters or more (a random 64-character key holds a given 4-letter word about once
# in 20,000 keys); runs such as xxxx are the entropy estimate's.
_PLACEHOLDERS = re.compile(
    r"(change[-_]?me|changeit|replace[-_]?me|placeholder|example|secret|password|"
    r"your[-_]?key|^todo|dummy|test[-_]?key)",
    re.IGNORECASE,
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")
CLIENT_KEYS = ("name", "key", "rate_limit", "burst", "models")


def _unpredictable(key: str) -> int:
    """How many characters of ``key`` cannot be predicted from those before it."""
    count, i = 0, 0
    while i < len(key):
        # the longest repeat of earlier text starting here (may overlap itself: abababab)
        longest = 0
        for start in range(i):
            length = 0
            while i + length < len(key) and key[start + length] == key[i + length]:
                length += 1
            longest = max(longest, length)
        if longest >= 3:
            count += 1  # a repeat costs about one choice, whatever its length
            i += longest
            continue
        if i >= 2:
            step = ord(key[i]) - ord(key[i - 1])
            if abs(step) <= 1 and step == ord(key[i - 1]) - ord(key[i - 2]):
                i += 1  # the third of aaa, abc or 321
                continue
        count += 1
        i += 1
    return count


def entropy_bits(key: str) -> float:
    """A per-character-class estimate of the randomness in ``key``, in bits."""
    alphabet = sum(size for member, size in _CLASSES if any(member(c) for c in key))
    return _unpredictable(key) * math.log2(alphabet) if alphabet > 1 else 0.0


def api_key_problem(key: object) -> str:
    """Why ``key`` cannot be an API key, or "" when it can. Never quotes the key."""
    if not isinstance(key, str) or not key:
        return "the key is empty"
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in key):
        return ("the key contains whitespace or a control character (a trailing newline from a "
                "file, a command or a YAML block scalar `|`? use `|-` or strip it)")
    size = len(key.encode())
    if size < MIN_BYTES:
        return f"the key is {size} bytes long; at least {MIN_BYTES} are needed"
    if size > MAX_BYTES:
        return f"the key is {size} bytes long; at most {MAX_BYTES} are accepted"
    if not _KEY.match(key):
        return f"the key has characters outside {CHARACTERS}"
    if _PLACEHOLDERS.search(key):
        return "the key looks like a placeholder"
    bits = entropy_bits(key)
    if bits < MIN_BITS:
        return (f"the key holds about {bits:.0f} bits of randomness; at least {MIN_BITS} are "
                "needed (repeats and runs such as aaa, abc or a repeated block count once)")
    return ""


def _whole_number(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def validate_clients(clients: object, variable: str = "llm_api_clients") -> list[str]:
    """Problems with a list of API clients ({name, key, rate_limit?, burst?, models?})."""
    fix = "generate each key with `openssl rand -base64 48` and keep them in a vault"
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
        label = f"{variable}[{i}] ({name})" if isinstance(name, str) and name else f"{variable}[{i}]"
        if not isinstance(name, str) or not _NAME.match(name):
            errors.append(f"{label}: name must be 1-64 of A-Z a-z 0-9 _ . @ -, starting with a letter or digit")
        elif name in seen_names:
            errors.append(f"{label}: the name {name!r} is used twice")
        else:
            seen_names.add(name)
        unknown = sorted(str(k) for k in set(client) - set(CLIENT_KEYS))
        if unknown:
            errors.append(f"{label}: unknown keys {', '.join(unknown)} (known: {', '.join(CLIENT_KEYS)})")
        if "rate_limit" in client and not _whole_number(client["rate_limit"], 1):
            errors.append(f"{label}: rate_limit must be a whole number of 1 or more (requests per second)")
        if "burst" in client and not _whole_number(client["burst"], 1):
            errors.append(f"{label}: burst must be a whole number of 1 or more "
                          "(requests let through at once; nginx refuses 0)")
        models = client.get("models")
        if models is not None and (not isinstance(models, list)
                                   or not all(isinstance(m, str) and m for m in models)):
            errors.append(f"{label}: models must be a list of served model names")
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
