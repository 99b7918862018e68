# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The test helpers of molecule/monitoring: the webhook receiver records what it is sent, and
the panel query check reads every query of a dashboard and counts a Prometheus answer's series
(against a stand-in HTTP server that answers like Prometheus's query API)."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "monitoring" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_webhook_receiver_appends_each_notification(tmp_path):
    receiver = _load("webhook_receiver")
    out = tmp_path / "alerts.jsonl"
    server = _serve(receiver.handler(str(out)))
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    try:
        for status in ("firing", "resolved"):
            body = json.dumps({"receiver": "lab", "alerts": [{"status": status}]}).encode()
            with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")) as resp:
                assert resp.status == 200
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=b"not json", method="POST"))
            raise AssertionError("expected 400")
        except urllib.error.HTTPError as err:
            assert err.code == 400
    finally:
        server.shutdown()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(entry["path"], entry["payload"]["alerts"][0]["status"]) for entry in lines] == [
        ("/alerts", "firing"), ("/alerts", "resolved")]


def test_the_panel_check_runs_every_query_and_counts_series(tmp_path):
    panels = _load("query_panels")
    seen = []

    class Prometheus(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)["query"][0]
            seen.append(query)
            answer = ({"status": "error", "error": "parse error"} if query == "bad(" else
                      {"status": "success", "data": {"result": [{}] * (0 if query == "empty" else 2)}})
            body = json.dumps(answer).encode()
            self.send_response(400 if query == "bad(" else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    dashboard = tmp_path / "d.json"
    dashboard.write_text(json.dumps({"uid": "d", "panels": [
        {"title": "a", "targets": [{"expr": "up"}, {"expr": "empty"}]}, {"title": "b", "targets": [{"expr": "bad("}]}]}))
    server = _serve(Prometheus)
    try:
        results = [panels.run(f"http://127.0.0.1:{server.server_address[1]}", e)
                   for _, _, e in panels.queries(str(dashboard))]
    finally:
        server.shutdown()
    assert seen == ["up", "empty", "bad("]
    assert [r["series"] for r in results] == [2, 0, 0]
    assert results[0]["status"] == "success" and results[2]["status"] != "success"
