# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Print Open WebUI's accounts as JSON: how many there are and the administrators' e-mail
addresses (oldest first), read from its SQLite database opened read-only.

    python3 open_webui_accounts.py /var/lib/teamllm-open-webui/webui.db
    {"users": 1, "admins": ["admin@example.org"]}

Run on the node by the open_webui role (ansible.builtin.script) to check, on every run, that
the administrators are the inventory's. It reads no password hash and changes nothing.
"""

from __future__ import annotations

import json
import pathlib
import sqlite3
import sys


def accounts(path):
    uri = pathlib.Path(path).resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True)
    try:
        users = db.execute('SELECT COUNT(*) FROM "user"').fetchone()[0]
        admins = [row[0] for row in db.execute(
            'SELECT email FROM "user" WHERE role = ? ORDER BY created_at, id', ("admin",))]
    finally:
        db.close()
    return {"users": users, "admins": admins}


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: open_webui_accounts.py DATABASE\n")
        return 2
    try:
        result = accounts(argv[1])
    except sqlite3.Error as exc:
        sys.stderr.write(f"cannot read Open WebUI's accounts from {argv[1]}: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
