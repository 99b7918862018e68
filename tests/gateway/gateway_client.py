#!/usr/bin/env python3
"""A small HTTPS client for the gateway's tests, run inside the node (molecule/gateway verify).

Prints one JSON document: the status, the headers, the body, and for streams each chunk's
arrival time, whether the stream ended cleanly, and the error when it did not. Keys come from
a JSON file (client name -> key) so they never appear on a command line or in task output.

  gateway_client.py --client alice --path /v1/chat/completions --body '{...}'
  gateway_client.py --client alice --path /v1/models --repeat 20     # statuses only
  gateway_client.py --port 8444 --path /ws/socket.io/?EIO=4 --websocket  # upgrade, echo
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import ssl
import sys
import time


def request(args, key):
    ctx = ssl.create_default_context(cafile=args.ca)
    conn = http.client.HTTPSConnection(args.host, args.port, context=ctx, timeout=args.timeout)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers[args.header] = key if args.header != "Authorization" else f"Bearer {key}"
    body = args.body.encode() if args.body is not None else None
    if args.body_size:
        body = json.dumps({"model": "fake", "pad": "x" * args.body_size}).encode()
    start = time.monotonic()
    conn.request(args.method or ("POST" if body is not None else "GET"), args.path, body=body, headers=headers)
    resp = conn.getresponse()
    out = {"status": resp.status, "headers": {k.lower(): v for k, v in resp.getheaders()},
           "chunks": [], "complete": False, "error": ""}
    data = b""
    try:
        while True:
            piece = resp.read1(65536)
            if not piece:
                break
            out["chunks"].append({"t": round(time.monotonic() - start, 3), "bytes": len(piece)})
            data += piece
        out["complete"] = True
    except (http.client.HTTPException, OSError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["body"] = data.decode(errors="replace")
    out["elapsed"] = round(time.monotonic() - start, 3)
    conn.close()
    return out


def websocket(args):
    """Upgrade to a WebSocket, send one text frame, read the answer, close."""
    from webui_double import accept_key, frame, read_frame  # installed beside this file

    ctx = ssl.create_default_context(cafile=args.ca)
    raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
    sock = ctx.wrap_socket(raw, server_hostname=args.host)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    rfile = sock.makefile("rb")
    status_line = rfile.readline().decode().strip()
    headers = {}
    while True:
        line = rfile.readline().decode().strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    out = {"status": int(status_line.split()[1]), "headers": headers,
           "accept_ok": headers.get("sec-websocket-accept") == accept_key(key), "echo": ""}
    if out["status"] == 101:
        sock.sendall(frame(0x1, b"hello-through-nginx", mask=os.urandom(4)))
        opcode, payload = read_frame(rfile)
        out["echo"] = payload.decode() if opcode == 0x1 else f"opcode {opcode}"
        sock.sendall(frame(0x8, b"\x03\xe8", mask=os.urandom(4)))
    sock.close()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--ca", default="/etc/teamllm/pki/ca.crt")
    p.add_argument("--keys", default="/root/teamllm-test-keys.json")
    p.add_argument("--client", help="name in the keys file; omitted: no key")
    p.add_argument("--raw-key", help="a literal (wrong) key")
    p.add_argument("--header", default="Authorization")
    p.add_argument("--method")
    p.add_argument("--path", required=True)
    p.add_argument("--body")
    p.add_argument("--body-size", type=int, default=0)
    p.add_argument("--repeat", type=int, default=0)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--websocket", action="store_true", help="upgrade and echo one frame")
    args = p.parse_args()
    key = args.raw_key
    if args.client:
        with open(args.keys) as f:
            key = json.load(f)[args.client]
    if args.websocket:
        json.dump(websocket(args), sys.stdout)
    elif args.repeat:
        json.dump({"statuses": [request(args, key)["status"] for _ in range(args.repeat)]}, sys.stdout)
    else:
        json.dump(request(args, key), sys.stdout)


if __name__ == "__main__":
    main()
