"""A test helper: runs every query of the Grafana dashboards (roles/grafana/files/dashboards)
against a real Prometheus and prints, per panel query, its status and how many series it
returned, as JSON. molecule/monitoring runs it on the monitoring host after traffic and
requires series from every panel (the GPU dashboard's only where a GPU is monitored).

    query_panels.py --prometheus http://127.0.0.1:9090 DASHBOARD.json ...
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request


def queries(path):
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    for panel in dashboard["panels"]:
        for target in panel.get("targets") or []:
            yield dashboard["uid"], panel["title"], target["expr"]


def run(prometheus, expr):
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (a test's loopback URL)
            answer = json.load(resp)
    except OSError as exc:
        return {"status": f"error: {exc}", "series": 0}
    if answer.get("status") != "success":
        return {"status": answer.get("error", "error"), "series": 0}
    return {"status": "success", "series": len(answer["data"]["result"])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prometheus", default="http://127.0.0.1:9090")
    p.add_argument("dashboards", nargs="+")
    args = p.parse_args(argv)
    results = [{"dashboard": uid, "panel": title, "expr": expr, **run(args.prometheus, expr)}
               for path in args.dashboards for uid, title, expr in queries(path)]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
