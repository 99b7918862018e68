#!/usr/bin/env python3
"""Try to take Open WebUI's first account through the gateway while it is being set up
(SECURITY.md row 40), run inside the node by molecule/open_webui's converge before the
open_webui role.

Posts a sign-up for "mallory" to the gateway's UI server every --interval seconds until
something other than the gateway itself answers (no connection, or nginx's 502/503/504 while
nothing listens behind it), then writes one JSON document to --out and exits:

    {"first": {"status": 403, "body": "...", "after_s": 612.3},
     "attempts": 3050, "statuses": {"unreachable": 12, "502": 3037, "403": 1}}

"first" is null when nothing but the gateway answered before --deadline. A safe setup answers
that first request with 403 (sign-up closed, the administrator already made); 200 means the
attempt took the first account.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import sys
import time

GATEWAY_ERRORS = {502, 503, 504}


def attempt(args, ctx):
    body = json.dumps({"name": "Mallory", "email": args.email, "password": "Mallory-signup-2026"})
    conn = http.client.HTTPSConnection(args.host, args.port, context=ctx, timeout=10)
    try:
        conn.request("POST", "/api/v1/auths/signup", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read(2000).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return None, ""
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8444)
    p.add_argument("--ca", default="/etc/teamllm/pki/ca.crt")
    p.add_argument("--email", default="mallory@teamllm.test")
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--deadline", type=float, default=3600)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    start = time.monotonic()
    statuses: dict[str, int] = {}
    first = None
    attempts = 0
    while time.monotonic() - start < args.deadline:
        # the CA appears when the gateway role has run; until then nothing answers anyway
        ctx = ssl.create_default_context(cafile=args.ca) if os.path.exists(args.ca) else None
        status, body = attempt(args, ctx) if ctx is not None else (None, "")
        attempts += 1
        key = "unreachable" if status is None else str(status)
        statuses[key] = statuses.get(key, 0) + 1
        if status is not None and status not in GATEWAY_ERRORS:
            first = {"status": status, "body": body, "after_s": round(time.monotonic() - start, 1)}
            break
        time.sleep(args.interval)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"first": first, "attempts": attempts, "statuses": statuses}, fh)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
