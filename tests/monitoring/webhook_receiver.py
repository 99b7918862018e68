"""A test helper, not a product: a real HTTP server that receives Alertmanager's webhook
notifications in molecule/monitoring and appends each one, as received, to a JSON-lines file.

    webhook_receiver.py --bind 127.0.0.1 --port 5001 --out /var/lib/teamllm-test/alerts.jsonl

Answers 200 to a POST whose body is JSON, 400 otherwise; GET / answers 200 (readiness).
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def handler(out):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self._answer(200, b"ok\n")

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                payload = json.loads(body)
            except ValueError:
                return self._answer(400, b"not JSON\n")
            with LOCK, open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps({"path": self.path, "payload": payload}) + "\n")
            return self._answer(200, b"received\n")

        def _answer(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    ThreadingHTTPServer((args.bind, args.port), handler(args.out)).serve_forever()


if __name__ == "__main__":
    main()
