"""API key hygiene (SECURITY rows 2 and 3): the trailing newline, whitespace and control
characters, the entropy estimate, and keys that are never quoted back."""

from __future__ import annotations

import base64
import random
import secrets
import string

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._api_keys import (
    MIN_BITS,
    api_key_problem,
    entropy_bits,
    validate_clients,
)

GOOD = "Zq4v8XkP2mW9rT6yB1nC5hJ7dF3gL0sA-_xE"
OTHER = "pL9mN2bV7cX4zQ8wE1rT6yU3iO5aS0dF-_gH"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        (None, "empty"),
        (42, "empty"),
        ("short", "5 bytes"),
        ("a" * 31, "31 bytes"),
        ("k" * 513, "at most 512"),
        ("changeme" * 5, "placeholder"),
        ("your-key-" + GOOD, "placeholder"),
        # the old check took these: 8 distinct characters or a `$` that accepts a newline
        (GOOD + "\n", "trailing newline"),
        (GOOD + "\r\n", "control character"),
        (" " + GOOD, "whitespace"),
        (GOOD[:16] + "\t" + GOOD[16:], "whitespace"),
        (GOOD[:16] + "\x00" + GOOD[16:], "control character"),
        ("x" * 40, "bits of randomness"),
        ("ab" * 20, "bits of randomness"),
        ("abcdefgh" * 5, "bits of randomness"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "bits of randomness"),
        ("Summer2024" * 4, "bits of randomness"),
        ("0123456789" * 4, "bits of randomness"),
        ("é" * 8 + GOOD, "characters outside"),
    ],
)
def test_unusable_keys(key, reason):
    problem = api_key_problem(key)
    assert reason in problem
    if isinstance(key, str) and key:
        assert key.strip() not in problem


def test_trailing_newline_is_refused_not_silently_stored():
    # A YAML block scalar `key: |` keeps the newline; the gateway would hash "key\n" and the
    # client's "key" would never match.
    assert api_key_problem(GOOD) == ""
    assert api_key_problem(GOOD + "\n").startswith("the key contains whitespace or a control character")


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: base64.b64encode(rng.randbytes(48)).decode(),  # openssl rand -base64 48
        lambda rng: base64.b64encode(rng.randbytes(32)).decode(),  # openssl rand -base64 32
        lambda rng: rng.randbytes(32).hex(),  # openssl rand -hex 32
        lambda rng: rng.randbytes(16).hex(),  # openssl rand -hex 16 (128 bits, the minimum)
        lambda rng: base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("="),  # token_urlsafe
        lambda rng: "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(48)),
    ],
    ids=["base64-48", "base64-32", "hex-32", "hex-16", "urlsafe-32", "password-lookup-48"],
)
def test_random_keys_of_the_documented_generators_pass(make):
    rng = random.Random(15)  # fixed seed: the test is repeatable
    for _ in range(500):
        key = make(rng)
        assert api_key_problem(key) == "", key


def test_entropy_estimate_counts_classes_and_repeats_once():
    assert entropy_bits("a" * 64) < 10
    assert entropy_bits(secrets.token_urlsafe(48)) > 300
    # the same characters in a random order are worth more than in a run
    assert entropy_bits("abcdefghijklmnopqrstuvwxyzABCDEF") < MIN_BITS < entropy_bits("qZbkWfXa0mT3rLs9PdYc2hVn8GuJe5Ki")


def test_shared_key_names_both_clients_and_never_the_key():
    errors = validate_clients([{"name": "alice", "key": GOOD}, {"name": "bob", "key": GOOD}])
    assert len(errors) == 1
    assert "alice" in errors[0] and "bob" in errors[0]
    assert GOOD not in errors[0]


def test_clients_other_problems():
    errors = validate_clients([{"name": "alice", "key": GOOD}, {"name": "alice", "key": OTHER, "colour": 1}])
    assert any("used twice" in e for e in errors)
    assert any("unknown keys colour" in e for e in errors)
    assert validate_clients([]) and validate_clients("nope")
    assert "openssl rand -base64 48" in validate_clients([])[0]


def test_clients_limits_are_whole_numbers_above_zero():
    assert validate_clients([{"name": "alice", "key": GOOD, "rate_limit": 5, "burst": 10,
                              "models": ["m"]}]) == []
    for bad in (0, -1, "10", 2.5, True):
        errors = validate_clients([{"name": "alice", "key": GOOD, "burst": bad}])
        assert errors == ["llm_api_clients[0] (alice): burst must be a whole number of 1 or more "
                          "(requests let through at once; nginx refuses 0)"], bad
    for bad in (0, "5r/s", 1.5):
        (error,) = validate_clients([{"name": "alice", "key": GOOD, "rate_limit": bad}])
        assert "rate_limit must be a whole number of 1 or more" in error
    (error,) = validate_clients([{"name": "alice", "key": GOOD, "models": "m"}])
    assert "models must be a list" in error


def test_client_key_problem_never_quotes_the_key():
    for key in (GOOD + "\n", "ab" * 20, "changeme" * 5):
        (error,) = validate_clients([{"name": "alice", "key": key}])
        assert key.strip() not in error and "openssl rand -base64 48" in error
