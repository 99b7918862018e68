# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The gateway's metrics: Debian's mtail runs the role's program over access-log lines written
in the exact format of roles/gateway/templates/nginx.conf.j2 (read from the template), and the
counters and histograms come out per client and model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROGRAM = ROOT / "roles" / "gateway" / "files" / "teamllm_gateway.mtail"
NGINX_CONF = ROOT / "roles" / "gateway" / "templates" / "nginx.conf.j2"


def _log_format(name):
    """The log format ``name`` of the template, as one string of nginx variables."""
    text = NGINX_CONF.read_text()
    match = re.search(rf"log_format {name} escape=json\n((?:\s+'[^']*'\n?)+);", text)
    assert match, f"log_format {name} not found in {NGINX_CONF}"
    return "".join(re.findall(r"'([^']*)'", match.group(1)))


def _line(fmt, **values):
    """One access-log line as nginx writes it (escape=json: strings JSON-escaped)."""
    def sub(match):
        value = values.get(match.group(1), "")
        return json.dumps(str(value))[1:-1]
    return re.sub(r"\$([a-z0-9_]+)", sub, fmt)


REQUEST = {"time_iso8601": "2026-12-02T10:00:00+00:00", "request_method": "POST",
           "uri": "/v1/chat/completions", "bytes_sent": 900}


def _routed(client, model, status=200, upstream="127.0.0.1:8081", upstream_status="200",
            request_time="0.512", prompt="", completion="", stream="", first_byte=""):
    return dict(REQUEST, teamllm_client=client, teamllm_model=model, status=status,
                request_time=request_time, upstream_addr=upstream, upstream_status=upstream_status,
                teamllm_prompt_tokens=prompt, teamllm_completion_tokens=completion,
                teamllm_stream=stream, teamllm_first_byte=first_byte)


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    if not shutil.which("mtail"):
        pytest.skip("mtail is not installed (tests/run.sh unit installs Debian's mtail)")
    fmt = _log_format("teamllm_json")
    http = _log_format("teamllm_http_json")
    lines = [
        # alice: a stream with usage, first token after 0.042 s
        _line(fmt, **_routed("alice", "teamllm-tiny", prompt=21, completion=8, stream="1",
                             first_byte="0.042", request_time="1.250")),
        # alice: a plain answer with usage (no first-token sample: not a stream)
        _line(fmt, **_routed("alice", "teamllm-tiny", prompt=10, completion=5, first_byte="0.300",
                             request_time="0.300")),
        # bob: the first replica refused, the second answered
        _line(fmt, **_routed("bob", "fake", upstream="127.0.0.1:9001, 127.0.0.1:9002",
                             upstream_status="502, 200", request_time="0.020")),
        # bob: refused by his rate limit (no backend saw it)
        _line(fmt, **_routed("bob", "fake", status=429, upstream="", upstream_status="",
                             request_time="0.000")),
        # bob: the backend's own 503 (not a gateway limit)
        _line(fmt, **_routed("bob", "fake", status=503, upstream_status="503", request_time="0.010")),
        # no key: 401; key guessing limited per address: 429 without a client
        _line(fmt, **dict(REQUEST, status=401, request_time="0.000")),
        _line(fmt, **dict(REQUEST, status=429, request_time="0.000")),
        # a refused path with a quote in it, and /v1/models
        _line(fmt, **dict(REQUEST, teamllm_client="carol", uri='/api/pull"x', status=403, request_time="0.000")),
        _line(fmt, **dict(REQUEST, teamllm_client="carol", uri="/v1/models", request_method="GET",
                          status=200, request_time="0.001")),
        # the plain-HTTP server's lines are not API requests
        _line(http, time_iso8601="t", request_method="GET", uri="/", status=301,
              request_time="0.000", bytes_sent=10),
    ]
    work = tmp_path_factory.mktemp("mtail")
    log = work / "teamllm-access.log"
    log.write_text("\n".join(lines) + "\n")
    progs = work / "progs"
    progs.mkdir()
    shutil.copy(PROGRAM, progs / PROGRAM.name)
    done = subprocess.run(["mtail", "--one_shot", "--one_shot_format=prometheus", "--emit_prog_label=false",
                           "--progs", str(progs), "--logs", str(log)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    samples = {}
    for row in done.stdout.splitlines():
        if row and not row.startswith("#"):
            name, _, value = row.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_requests_are_counted_by_client_model_endpoint_and_status(metrics):
    total = 'teamllm_gateway_requests_total{client="%s",endpoint="%s",model="%s",status="%s"}'
    assert metrics[total % ("alice", "/v1/chat/completions", "teamllm-tiny", "200")] == 2
    assert metrics[total % ("bob", "/v1/chat/completions", "fake", "429")] == 1
    assert metrics[total % ("", "/v1/chat/completions", "", "401")] == 1
    # unknown paths share one label value (bounded series)
    assert metrics[total % ("carol", "other", "", "403")] == 1
    assert metrics[total % ("carol", "/v1/models", "", "200")] == 1
    requests = sum(v for k, v in metrics.items() if k.startswith("teamllm_gateway_requests_total{"))
    assert requests == 9  # every API line, not the plain-HTTP one


def test_tokens_are_summed_per_client_and_model(metrics):
    assert metrics['teamllm_gateway_prompt_tokens_total{client="alice",model="teamllm-tiny"}'] == 31
    assert metrics['teamllm_gateway_completion_tokens_total{client="alice",model="teamllm-tiny"}'] == 13


def test_limits_refusals_retries_and_errors(metrics):
    assert metrics['teamllm_gateway_rate_limited_total{client="bob"}'] == 1
    assert metrics['teamllm_gateway_rate_limited_total{client=""}'] == 1
    assert metrics["teamllm_gateway_unauthorized_total"] == 1
    assert metrics['teamllm_gateway_upstream_retries_total{model="fake"}'] == 1
    # the retried request's first attempt; the backend's 503 is not a gateway error
    assert metrics['teamllm_gateway_upstream_errors_total{model="fake"}'] == 1


def test_latency_and_first_token_histograms(metrics):
    bucket = 'teamllm_gateway_request_duration_seconds_bucket{client="alice",model="teamllm-tiny",le="%s"}'
    assert metrics[bucket % "0.5"] == 1 and metrics[bucket % "2.5"] == 2
    assert metrics['teamllm_gateway_request_duration_seconds_count{client="bob",model="fake"}'] == 2
    first = 'teamllm_gateway_first_token_seconds_bucket{client="alice",model="teamllm-tiny",le="%s"}'
    assert metrics[first % "0.025"] == 0 and metrics[first % "0.05"] == 1
    assert metrics['teamllm_gateway_first_token_seconds_count{client="alice",model="teamllm-tiny"}'] == 1
