#!/usr/bin/env python3
"""A test double of Open WebUI's HTTP side, for the gateway's Open WebUI server (tests only).

Not Open WebUI: just enough to prove what nginx must carry (molecule/gateway). Standard
library only.

  GET /                      a small HTML page naming this double
  GET /ws/socket.io/...      with `Upgrade: websocket`: 101 Switching Protocols (RFC 6455
                             accept key), then every text frame the client sends comes back
                             prefixed with "echo:" until the client closes
  POST any path              {"received": <bytes read>, "path": ...} (uploads)
  GET other paths            404
Each answer also reports the X-Forwarded-Proto the double received.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455, section 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def read_frame(rfile):
    """One WebSocket frame: (opcode, payload); (None, b"") at end of stream."""
    head = rfile.read(2)
    if len(head) < 2:
        return None, b""
    opcode, length, masked = head[0] & 0x0F, head[1] & 0x7F, head[1] & 0x80
    if length == 126:
        length = struct.unpack("!H", rfile.read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", rfile.read(8))[0]
    mask = rfile.read(4) if masked else b"\0\0\0\0"
    data = rfile.read(length)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final WebSocket frame; clients must mask (pass `mask`), servers must not."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webui-double"

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, ctype, data):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Double-Forwarded-Proto", self.headers.get("X-Forwarded-Proto", ""))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/ws/socket.io") and self.headers.get("Upgrade", "").lower() == "websocket":
            return self._websocket()
        if self.path == "/":
            page = b"<!doctype html><title>Open WebUI (test double)</title><p>webui-double</p>\n"
            return self._send(200, "text/html; charset=utf-8", page)
        return self._send(404, "application/json", b'{"detail":"Not Found"}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < length:
            piece = self.rfile.read(min(65536, length - received))
            if not piece:
                break
            received += len(piece)
        doc = {"received": received, "path": self.path}
        self._send(200, "application/json", json.dumps(doc).encode())

    def _websocket(self):
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(self.headers.get("Sec-WebSocket-Key", "")))
        self.end_headers()
        self.wfile.flush()
        while True:
            opcode, payload = read_frame(self.rfile)
            if opcode is None or opcode == 0x8:  # end of stream or close
                if opcode == 0x8:
                    self.wfile.write(frame(0x8, payload[:2]))
                break
            if opcode == 0x9:  # ping
                self.wfile.write(frame(0xA, payload))
            elif opcode == 0x1:
                self.wfile.write(frame(0x1, b"echo:" + payload))
            self.wfile.flush()
        self.close_connection = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
