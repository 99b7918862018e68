#!/usr/bin/env python3
"""A test double of an OpenAI-compatible inference backend, for the gateway's fault tests.

Not an engine: it answers as the request's ``fault`` field asks, so the gateway's behaviour
with a busy, slow, dying or absent backend can be proven (molecule/gateway). Standard library
only. Every request's body is appended to the log file, so a test can prove a request never
reached it, and the Authorization header it came with to LOG.auth ("-" for none), so a test
can prove the gateway presents the backend's own key and never a client's.

  fault absent  a chat completion whose content names this replica (its port)
  "busy"        503 with Retry-After (queue full)
  "drip"        `chunks` server-sent events `interval` seconds apart, then [DONE]
  "slow"        one event, a pause of `gap` seconds, one event, then [DONE]
  "die"         three events, then the process kills itself (SIGKILL) mid-stream
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-backend-double"

    def log_message(self, fmt, *args):  # quiet: the log file holds what tests read
        pass

    def _json(self, status, doc, headers=None):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, i):
        doc = {"object": "chat.completion.chunk", "replica": self.server.port,
               "choices": [{"index": 0, "delta": {"content": f"r{self.server.port}-t{i} "}}]}
        self._chunk("data: " + json.dumps(doc) + "\n\n")

    def do_GET(self):
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with open(self.server.log, "ab") as log:
            log.write(raw + b"\n")
        # the Authorization header the gateway presented (its backend key, or none), one per line
        with open(self.server.log + ".auth", "a") as auth:
            auth.write((self.headers.get("Authorization") or "-") + "\n")
        try:
            body = json.loads(raw)
        except ValueError:
            return self._json(400, {"error": {"message": "invalid JSON"}})
        fault = body.get("fault")
        if fault == "busy":
            return self._json(503, {"error": {"message": f"queue full at r{self.server.port}"}},
                              {"Retry-After": "7"})
        if fault not in ("drip", "slow", "die"):
            return self._json(200, {"object": "chat.completion", "replica": self.server.port,
                                    "choices": [{"index": 0, "message": {
                                        "role": "assistant", "content": f"r{self.server.port}"}}]})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if fault == "drip":
            for i in range(int(body.get("chunks", 5))):
                self._event(i)
                time.sleep(float(body.get("interval", 0.5)))
        elif fault == "slow":
            self._event(0)
            time.sleep(float(body.get("gap", 62)))
            self._event(1)
        else:  # die
            for i in range(3):
                self._event(i)
                time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGKILL)
        self._chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.port, server.log = args.port, args.log
    server.serve_forever()


if __name__ == "__main__":
    main()
