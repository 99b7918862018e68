#!/usr/bin/env python3
"""Concurrent streams against an OpenAI-compatible completion endpoint; generated tokens/s.

    python3 tests/gpu/bench_client.py --url http://127.0.0.1:8100 --streams 8 --requests 4 \
        --max-tokens 128 --label defaults --out server.jsonl

Each of N threads (streams) sends R requests one after the other to `/v1/completions`
(non-streaming, `max_tokens` fixed, `ignore_eos: true` so every answer has exactly max_tokens
tokens; sampling is the server's default, as a client that sends no sampling settings gets).
Each request's prompt is different (about --prompt-words words) so no request reuses another's
cached prompt. One warm-up request runs first, untimed. Appends one JSON line:

- aggregate_tps: all completion tokens / (last answer - first request sent);
- per_stream_tps: median over requests of completion tokens / request latency (what a user
  sees: prompt processing, queueing and HTTP included);
- decode_tps_median: median of the server's own `timings.predicted_per_second` (decode only);
- every request's latency, tokens and server timings.

Standard library only (urllib, threads): runs on the GPU machine without extra packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.request

WORDS = "the of and to in is that it for on with as was at by be this from".split()


def prompt_for(stream: int, request: int, words: int) -> str:
    # distinct from the first word on, so no prefix of another request's prompt is reused
    head = f"w{1000 + stream * 97 + request * 7} w{2000 + request * 13 + stream}"
    body = " ".join(WORDS[(stream + request + i) % len(WORDS)] for i in range(max(0, words - 2)))
    return f"{head} {body}"


def post(url: str, body: dict, timeout: float) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


def one(url: str, model: str, prompt: str, max_tokens: int, timeout: float) -> dict:
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True,
            "stream": False}
    t0 = time.perf_counter()
    rec = {"start": t0}
    try:
        try:
            out = post(url + "/v1/completions", body, timeout)
        except ConnectionError:  # a reset connection (full accept queue): once more, counted
            rec["retried"] = True
            out = post(url + "/v1/completions", body, timeout)
        rec["tokens"] = int((out.get("usage") or {}).get("completion_tokens") or 0)
        rec["prompt_tokens"] = int((out.get("usage") or {}).get("prompt_tokens") or 0)
        timings = out.get("timings") or {}
        rec["server"] = {k: timings.get(k) for k in ("prompt_n", "prompt_ms", "predicted_n",
                                                      "predicted_ms", "predicted_per_second")}
    except Exception as exc:  # noqa: BLE001 - recorded, not raised
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["tokens"] = 0
    rec["end"] = time.perf_counter()
    rec["latency_s"] = rec["end"] - t0
    return rec


def run(url: str, model: str, streams: int, requests: int, max_tokens: int, words: int,
        timeout: float) -> dict:
    one(url, model, prompt_for(999, 999, words), max_tokens, timeout)  # warm-up
    results: list[list[dict]] = [[] for _ in range(streams)]
    barrier = threading.Barrier(streams)

    def worker(s: int) -> None:
        barrier.wait()
        for r in range(requests):
            results[s].append(one(url, model, prompt_for(s, r, words), max_tokens, timeout))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [r for rs in results for r in rs]
    t0 = min(r["start"] for r in flat)
    t1 = max(r["end"] for r in flat)
    tokens = sum(r["tokens"] for r in flat)
    ok = [r for r in flat if "error" not in r]
    per_request = [r["tokens"] / r["latency_s"] for r in ok if r["latency_s"] > 0]
    decode = [r["server"]["predicted_per_second"] for r in ok
              if (r.get("server") or {}).get("predicted_per_second")]
    for r in flat:  # relative times, readable
        r["start"] = round(r["start"] - t0, 4)
        r["end"] = round(r["end"] - t0, 4)
        r["latency_s"] = round(r["latency_s"], 4)
    return {
        "streams": streams, "requests_per_stream": requests, "max_tokens": max_tokens,
        "prompt_words": words, "errors": len(flat) - len(ok),
        "short_answers": sum(1 for r in ok if r["tokens"] != max_tokens),
        "retried": sum(1 for r in flat if r.get("retried")),
        "wall_s": round(t1 - t0, 4), "tokens": tokens,
        "aggregate_tps": round(tokens / (t1 - t0), 2) if t1 > t0 else None,
        "per_stream_tps": round(statistics.median(per_request), 2) if per_request else None,
        "per_stream_tps_min": round(min(per_request), 2) if per_request else None,
        "decode_tps_median": round(statistics.median(decode), 2) if decode else None,
        "requests": results,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8100")
    ap.add_argument("--model", default="llama-3.1-8b")
    ap.add_argument("--streams", type=int, nargs="+", default=[1])
    ap.add_argument("--requests", type=int, default=4, help="requests per stream")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--label", default="")
    ap.add_argument("--meta", default="{}", help="JSON object merged into each record")
    ap.add_argument("--out", help="append one JSON line per stream count here")
    args = ap.parse_args()
    for streams in args.streams:
        rec = {"label": args.label, **json.loads(args.meta),
               **run(args.url.rstrip("/"), args.model, streams, args.requests, args.max_tokens,
                     args.prompt_words, args.timeout)}
        print(f"{args.label:28s} streams={streams:3d} aggregate={rec['aggregate_tps']} tok/s "
              f"per-stream={rec['per_stream_tps']} decode={rec['decode_tps_median']} "
              f"errors={rec['errors']} short={rec['short_answers']} wall={rec['wall_s']}s",
              flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
