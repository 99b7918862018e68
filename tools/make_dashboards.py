#!/usr/bin/env python3
"""Write the Grafana dashboards of the grafana role (roles/grafana/files/dashboards/*.json)
from the data below: one entry per panel (title, unit, queries with their legends). The JSON
files are committed; tests/unit/roles/test_grafana.py checks that they are what this writes,
and molecule/monitoring runs every panel's query against the lab's Prometheus after traffic.

    .venv/bin/python tools/make_dashboards.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "roles" / "grafana" / "files" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "teamllm-prometheus"}
# filesystems that are not disks to watch
DISKS = 'fstype!~"tmpfs|ramfs|squashfs|overlay|nsfs|fuse.*"'


def q(expr, legend=""):
    return (expr, legend)


# dashboard uid -> (title, tags, [(panel title, kind, unit, [queries])]); kind: timeseries,
# stat or table. Panels that show an engine's own metrics join the engines with `or`, so one
# panel serves llama.cpp and vLLM alike (each series carries its engine label).
DASHBOARDS = {
    "teamllm-overview": ("teamllm.stack: overview", ["teamllm"], [
        ("Requests per second by model", "timeseries", "reqps", [
            q('sum by (model) (rate(teamllm_gateway_requests_total{model!=""}[5m]))', "{{model}}")]),
        ("Share of 5xx answers", "stat", "percentunit", [
            q('(sum(rate(teamllm_gateway_requests_total{status=~"5.."}[5m])) or vector(0))'
              ' / sum(rate(teamllm_gateway_requests_total[5m]))', "5xx")]),
        ("Latency p95 by model", "timeseries", "s", [
            q('histogram_quantile(0.95, sum by (model, le) '
              '(rate(teamllm_gateway_request_duration_seconds_bucket[5m])))', "{{model}}")]),
        ("Completion tokens per second by model", "timeseries", "short", [
            q("sum by (model) (rate(teamllm_gateway_completion_tokens_total[5m]))", "{{model}}")]),
        ("Targets up by job", "stat", "short", [
            q("sum by (job) (up)", "{{job}}")]),
        ("Engine instances ready", "stat", "short", [
            q('sum by (engine) (probe_success{job="engine_health"})', "{{engine}}")]),
        ("Firing alerts", "table", "short", [
            q('sum by (alertname, severity, host) (ALERTS{alertstate="firing"})', "")]),
    ]),
    "teamllm-gateway": ("teamllm.stack: gateway per client and model", ["teamllm", "gateway"], [
        ("Requests per second by client", "timeseries", "reqps", [
            q("sum by (client) (rate(teamllm_gateway_requests_total[5m]))", "{{client}}")]),
        ("Requests per second by model and status", "timeseries", "reqps", [
            q('sum by (model, status) (rate(teamllm_gateway_requests_total{model!=""}[5m]))',
              "{{model}} {{status}}")]),
        ("Latency p50 and p95 by model", "timeseries", "s", [
            q('histogram_quantile(0.5, sum by (model, le) '
              '(rate(teamllm_gateway_request_duration_seconds_bucket[5m])))', "p50 {{model}}"),
            q('histogram_quantile(0.95, sum by (model, le) '
              '(rate(teamllm_gateway_request_duration_seconds_bucket[5m])))', "p95 {{model}}")]),
        ("Time to first token p95 by model (streams)", "timeseries", "s", [
            q('histogram_quantile(0.95, sum by (model, le) '
              '(rate(teamllm_gateway_first_token_seconds_bucket[5m])))', "{{model}}")]),
        ("Prompt tokens per second by client and model", "timeseries", "short", [
            q("sum by (client, model) (rate(teamllm_gateway_prompt_tokens_total[5m]))",
              "{{client}} {{model}}")]),
        ("Completion tokens per second by client and model", "timeseries", "short", [
            q("sum by (client, model) (rate(teamllm_gateway_completion_tokens_total[5m]))",
              "{{client}} {{model}}")]),
        ("Tokens in the last 24 hours by client", "table", "short", [
            q("sum by (client) (increase(teamllm_gateway_prompt_tokens_total[24h])"
              " + increase(teamllm_gateway_completion_tokens_total[24h]))", "")]),
        ("Rate-limit refusals per second by client", "timeseries", "reqps", [
            q("sum by (client) (rate(teamllm_gateway_rate_limited_total[5m]))", "{{client}}")]),
        ("Unauthorized requests per second", "timeseries", "reqps", [
            q("sum(rate(teamllm_gateway_unauthorized_total[5m]))", "401")]),
        ("Upstream errors and retries per second by model", "timeseries", "reqps", [
            q("sum by (model) (rate(teamllm_gateway_upstream_errors_total[5m]))", "errors {{model}}"),
            q("sum by (model) (rate(teamllm_gateway_upstream_retries_total[5m])) or "
              "sum by (model) (rate(teamllm_gateway_upstream_errors_total[5m])) * 0",
              "retries {{model}}")]),
        ("Gateway certificate: days left", "stat", "d", [
            q('min by (host) (probe_ssl_earliest_cert_expiry{job="gateway_health"} - time()) / 86400',
              "{{host}}")]),
    ]),
    "teamllm-engines": ("teamllm.stack: engines", ["teamllm", "engines"], [
        ("Ready (readiness probe; Ollama included)", "timeseries", "bool", [
            q('probe_success{job="engine_health"}', "{{engine}} {{instance_id}}")]),
        ("Readiness probe time", "timeseries", "s", [
            q('probe_duration_seconds{job="engine_health"}', "{{engine}} {{instance_id}}")]),
        ("Requests being processed", "timeseries", "short", [
            q("llamacpp:requests_processing or vllm:num_requests_running", "{{engine}} {{instance_id}}")]),
        ("Queue: requests waiting (llama.cpp deferred, vLLM waiting)", "timeseries", "short", [
            q("llamacpp:requests_deferred or vllm:num_requests_waiting", "{{engine}} {{instance_id}}")]),
        ("Generated tokens per second", "timeseries", "short", [
            q("rate(llamacpp:tokens_predicted_total[5m]) or rate(vllm:generation_tokens_total[5m])",
              "{{engine}} {{instance_id}}")]),
        ("Prompt tokens per second", "timeseries", "short", [
            q("rate(llamacpp:prompt_tokens_total[5m]) or rate(vllm:prompt_tokens_total[5m])",
              "{{engine}} {{instance_id}}")]),
        ("Generation speed while generating (tokens/s)", "timeseries", "short", [
            q("llamacpp:predicted_tokens_seconds or 1 / (rate(vllm:time_per_output_token_seconds_sum[5m])"
              " / rate(vllm:time_per_output_token_seconds_count[5m]))", "{{engine}} {{instance_id}}")]),
        ("Restarts in the last hour", "timeseries", "short", [
            q('increase(node_systemd_service_restart_total{name=~"teamllm-.*"}[1h])', "{{host}} {{name}}")]),
    ]),
    "teamllm-gpus": ("teamllm.stack: GPUs", ["teamllm", "gpu"], [
        ("Utilisation", "timeseries", "percent", [
            q("gpu_utilization_Percentage", "{{host}} GPU {{index}}")]),
        ("Memory used and total", "timeseries", "mbytes", [
            q("gpu_memory_used_MiB", "used {{host}} GPU {{index}}"),
            q("gpu_memory_total_MiB", "total {{host}} GPU {{index}}")]),
        ("Temperature", "timeseries", "celsius", [
            q("gpu_temperature_C", "{{host}} GPU {{index}}")]),
        ("Power and its limit", "timeseries", "watt", [
            q("gpu_power_usage_W", "{{host}} GPU {{index}}"),
            q("gpu_power_limit_W", "limit {{host}} GPU {{index}}")]),
        ("Clocks (SM, memory)", "timeseries", "hertz", [
            q("gpu_clock_sm_MHz * 1e6", "SM {{host}} GPU {{index}}"),
            q("gpu_clock_memory_MHz * 1e6", "memory {{host}} GPU {{index}}")]),
        ("Active throttle reasons", "table", "short", [
            q('teamllm_gpu_clocks_event_reason{reason!="gpu_idle"} == 1', "")]),
        ("Xid errors in the last 24 hours by action", "table", "short", [
            q("sum by (host, index, xid, action) (increase(teamllm_gpu_xid_errors_total[24h]))", "")]),
        ("ECC errors (since the driver loaded)", "table", "short", [
            q("teamllm_gpu_ecc_errors_total", "")]),
        ("Plan against reality: memory held and estimated per engine instance", "timeseries", "bytes", [
            q("teamllm_instance_gpu_memory_bytes", "held {{instance_id}} GPU {{index}}"),
            q("teamllm_instance_gpu_memory_estimate_bytes", "planned {{instance_id}} GPU {{index}}")]),
        ("Memory of processes no plan knows", "timeseries", "bytes", [
            q("teamllm_gpu_other_memory_bytes", "{{host}} GPU {{index}}")]),
    ]),
    "teamllm-nodes": ("teamllm.stack: nodes", ["teamllm", "nodes"], [
        ("CPU busy", "timeseries", "percentunit", [
            q('1 - avg by (host) (rate(node_cpu_seconds_total{mode="idle"}[5m]))', "{{host}}")]),
        ("Memory available", "timeseries", "percentunit", [
            q("node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{host}}")]),
        ("Disk free", "timeseries", "percentunit", [
            q(f"node_filesystem_avail_bytes{{{DISKS}}} / node_filesystem_size_bytes{{{DISKS}}}",
              "{{host}} {{mountpoint}}")]),
        ("Network received and sent", "timeseries", "Bps", [
            q('sum by (host) (rate(node_network_receive_bytes_total{device!="lo"}[5m]))', "in {{host}}"),
            q('sum by (host) (rate(node_network_transmit_bytes_total{device!="lo"}[5m]))', "out {{host}}")]),
        ("Load (1 minute)", "timeseries", "short", [
            q("node_load1", "{{host}}")]),
        ("Failed systemd units", "stat", "short", [
            q('sum by (host) (node_systemd_unit_state{state="failed"})', "{{host}}")]),
        ("Service restarts in the last hour", "table", "short", [
            q("topk(10, sum by (host, name) (increase(node_systemd_service_restart_total[1h])))", "")]),
    ]),
}


def panel(pid, title, kind, unit, queries):
    row, col = divmod(pid - 1, 2)
    result = {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": col * 12, "y": row * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
             "legendFormat": legend, "instant": kind == "table", "range": kind != "table"}
            for i, (expr, legend) in enumerate(queries)
        ],
    }
    if kind == "table":
        result["transformations"] = [{"id": "labelsToFields", "options": {}}]
    return result


def dashboard(uid, title, tags, panels):
    return {
        "uid": uid,
        "title": title,
        "tags": tags,
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "panels": [panel(i, *spec) for i, spec in enumerate(panels, start=1)],
    }


def render():
    return {f"{uid}.json": json.dumps(dashboard(uid, *spec), indent=2, sort_keys=True) + "\n"
            for uid, spec in DASHBOARDS.items()}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
