#!/usr/bin/env python3
"""Write chats into Open WebUI through its API as fast as it takes them, for a while (SECURITY.md
row 25: a backup taken while Open WebUI writes). Run inside the node by
molecule/open_webui/verify_backup.yml as a transient systemd unit; the bearer token is read from
a 0600 file, never from the command line. Prints the number of chats written to --out."""

from __future__ import annotations

import argparse
import json
import ssl
import time
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.token_file, encoding="utf-8") as handle:
        token = handle.read().strip()
    context = ssl.create_default_context(cafile=args.ca)
    written, errors, end = 0, 0, time.monotonic() + args.seconds
    while time.monotonic() < end:
        body = json.dumps({"chat": {"title": f"written during a backup {written}", "messages": [
            {"role": "user", "content": "x" * 2000}]}}).encode()
        request = urllib.request.Request(f"{args.url}/api/v1/chats/new", data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as answer:
                answer.read()
            written += 1
        except OSError:
            errors += 1
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"written": written, "errors": errors}, handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
