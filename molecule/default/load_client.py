#!/usr/bin/env python3
"""A bounded load through the gateway during a rolling update (molecule default's verify), run
inside a node against its gateway on 127.0.0.1.

Two threads send chat completions in turn (one plain, one streamed) until the file STOP exists
or --max-seconds pass, then print one JSON document: how many requests were sent, answered,
and failed, each failure with its kind. A request fails "before streaming" when its answer is
not 200 or a plain answer has no completion tokens, or when a stream breaks before its first
event; "while streaming" when a stream that had begun breaks (the gateway never splices another
backend's output in; see docs/gateway.md). The key comes from the environment (TEAMLLM_KEY), so
it is never on a command line.

  load_client.py --stop /tmp/teamllm-load.stop --max-seconds 600 > result.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import threading
import time


def one(args, key, stream):
    ctx = ssl.create_default_context(cafile=args.ca)
    conn = http.client.HTTPSConnection("127.0.0.1", args.port, context=ctx, timeout=60)
    body = {"model": args.model, "max_tokens": 8, "stream": stream,
            "messages": [{"role": "user", "content": "hello"}]}
    started = False
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            resp.read()
            return {"ok": False, "when": "before streaming", "error": f"status {resp.status}"}
        if not stream:
            answer = json.loads(resp.read())
            if answer.get("usage", {}).get("completion_tokens", 0) < 1:
                return {"ok": False, "when": "before streaming", "error": "no completion tokens"}
            return {"ok": True}
        done = False
        for line in resp:
            if line.startswith(b"data: "):
                started = True
                if line.strip() == b"data: [DONE]":
                    done = True
        if not done:
            return {"ok": False, "when": "while streaming" if started else "before streaming",
                    "error": "stream ended without [DONE]"}
        return {"ok": True}
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return {"ok": False, "when": "while streaming" if started else "before streaming",
                "error": f"{type(exc).__name__}: {exc}"[:200]}
    finally:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stop", required=True)
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--ca", default="/etc/teamllm/pki/ca.crt")
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--model", default="teamllm-tiny")
    ap.add_argument("--pause", type=float, default=0.2)
    args = ap.parse_args()
    key = os.environ["TEAMLLM_KEY"]
    results, lock = [], threading.Lock()
    deadline = time.monotonic() + args.max_seconds

    def worker(stream):
        while time.monotonic() < deadline and not os.path.exists(args.stop):
            result = one(args, key, stream)
            result["at"] = round(time.time(), 1)
            with lock:
                results.append(result)
            time.sleep(args.pause)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (False, True)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failures = [r for r in results if not r["ok"]]
    print(json.dumps({
        "seconds": round(time.time() - start, 1),
        "sent": len(results),
        "answered": len(results) - len(failures),
        "failed_before_streaming": [r for r in failures if r["when"] == "before streaming"],
        "failed_while_streaming": [r for r in failures if r["when"] == "while streaming"],
        "first": results[0]["at"] if results else None,
        "last": results[-1]["at"] if results else None,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
