# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The open_webui role's first administrator (SECURITY.md rows 16 and 40): the environment file
Open WebUI creates it from, the administrators a run accepts, and the script that lists the
administrators it finds."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from role_files import trust

ROLE = Path(__file__).resolve().parents[3] / "roles" / "open_webui"
SCRIPT = ROLE / "files" / "open_webui_accounts.py"
LOADER = DataLoader()



def _variables(**extra) -> dict:
    variables = {}
    for path in (ROLE / "defaults" / "main.yml", ROLE / "vars" / "main.yml"):
        variables.update(trust(LOADER.load_from_file(str(path)) or {}))
    variables.update(ansible_managed="managed", **extra)
    return variables


def render_admin_env(**extra) -> str:
    text = (ROLE / "templates" / "admin.env.j2").read_text()
    return Templar(loader=LOADER, variables=_variables(**extra)).template(trust_as_template(text))


@pytest.mark.parametrize(
    "password",
    ["plain-password-1234", "sp ace and 'single' quotes", 'dq"uote\\back$HOME`date`#x', "ünïcødé-pässwörd-!%&*()"],
)
def test_admin_env_reads_back_unchanged_in_a_shell(tmp_path, password):
    env = tmp_path / "admin.env"
    env.write_text(render_admin_env(open_webui_admin_email="Admin@Example.org", open_webui_admin_name="Lab Admin",
                                    open_webui_admin_password=password))
    out = subprocess.run(
        ["bash", "-c", 'set -a; . "$1"; set +a; printf "%s\\0%s\\0%s" "$WEBUI_ADMIN_EMAIL" "$WEBUI_ADMIN_NAME" "$WEBUI_ADMIN_PASSWORD"',
         "bash", str(env)],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert out.stdout.split("\0") == ["Admin@Example.org", "Lab Admin", password]


def test_admin_env_escapes_what_systemd_and_a_shell_read_in_double_quotes():
    text = render_admin_env(open_webui_admin_email="a@b.c", open_webui_admin_password='x"y\\z$w`q')
    assert 'WEBUI_ADMIN_PASSWORD="x\\"y\\\\z\\$w\\`q"' in text.splitlines()


def test_admins_allowed_are_the_inventorys_in_lower_case():
    templar = Templar(loader=LOADER, variables=_variables(
        open_webui_admin_email="Admin@Example.org", open_webui_additional_admins=["Ops@Example.org", "admin@example.org"]))
    assert templar.template(trust_as_template("{{ _open_webui_admins_allowed }}")) == ["admin@example.org", "ops@example.org"]


def _database(path: Path, users: list[tuple[str, str, int]]) -> Path:
    db = sqlite3.connect(path)
    db.execute('CREATE TABLE "user" (id TEXT PRIMARY KEY, email TEXT, role TEXT, name TEXT, created_at INTEGER)')
    db.executemany('INSERT INTO "user" VALUES (?, ?, ?, ?, ?)',
                   [(f"id{i}", email, role, "x", created) for i, (email, role, created) in enumerate(users)])
    db.commit()
    db.close()
    return path


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_accounts_lists_the_administrators_oldest_first(tmp_path):
    db = _database(tmp_path / "webui.db", [("late-admin@x.org", "admin", 30), ("first@x.org", "admin", 10),
                                           ("user@x.org", "user", 20), ("new@x.org", "pending", 40)])
    before = db.read_bytes()
    out = run_script(str(db))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"users": 4, "admins": ["first@x.org", "late-admin@x.org"]}
    assert db.read_bytes() == before  # read-only


def test_accounts_of_a_missing_database_fail_naming_it(tmp_path):
    out = run_script(str(tmp_path / "absent.db"))
    assert out.returncode == 1
    assert "cannot read Open WebUI's accounts from" in out.stderr and "absent.db" in out.stderr
    assert not (tmp_path / "absent.db").exists()


def test_the_check_runs_after_the_service_and_the_old_signup_is_gone():
    main = LOADER.load_from_file(str(ROLE / "tasks" / "main.yml"))
    steps = [t.get("ansible.builtin.import_tasks") or t.get("ansible.builtin.include_tasks") for t in main]
    assert steps[-1] == "admin.yml" and steps.index("admin.yml") > steps.index("service-{{ open_webui_install_method }}.yml")
    tasks_text = "".join(p.read_text() for p in (ROLE / "tasks").glob("*.yml"))
    assert "/api/v1/auths/signup" not in tasks_text  # the role never signs up through the API
