"""Open WebUI's database on PostgreSQL: the backup tool's dump (pg_dump --format=custom), its
check (pg_restore --list), restore (pg_restore) and record, against a real PostgreSQL server
this test starts on loopback (Debian's postgresql package; tests/run.sh installs it). Skipped,
saying why, where no PostgreSQL server can be started."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _backup

PASSWORD = "s3cret/p@ss word"
SCHEMA = """
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('3781e22d8b01');
CREATE TABLE "user" (id text PRIMARY KEY, email text);
CREATE TABLE chat (id text PRIMARY KEY, user_id text, title text);
INSERT INTO "user" VALUES ('u1', 'admin@teamllm.test'), ('u2', 'bob@teamllm.test');
INSERT INTO chat VALUES ('c1', 'u1', 'first'), ('c2', 'u1', 'second'), ('c3', 'u2', 'third');
"""


def _server_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else ""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """A PostgreSQL server on 127.0.0.1 (password authentication) with Open WebUI's tables."""
    bindir = _server_bin()
    missing = [tool for tool in ("pg_dump", "pg_restore", "psql") if not shutil.which(tool)]
    if not bindir or missing:
        pytest.skip("no PostgreSQL server or client here (Debian's postgresql package: "
                    "tests/run.sh unit installs it when it runs as root)")
    as_user = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres account to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = tempfile.mkdtemp(prefix="teamllm-pg-")
    os.chmod(root, 0o755)
    data, pwfile = os.path.join(root, "data"), os.path.join(root, "pw")
    with open(pwfile, "w", encoding="utf-8") as f:
        f.write(PASSWORD + "\n")
    if as_user:
        info = pwd.getpwnam("postgres")
        os.chown(root, info.pw_uid, info.pw_gid)
        os.chown(pwfile, info.pw_uid, info.pw_gid)
    port = _free_port()
    run = lambda argv: subprocess.run(as_user + argv, capture_output=True, text=True, check=False)  # noqa: E731
    done = run([f"{bindir}/initdb", "-D", data, "-U", "teamllm", "--auth-host=scram-sha-256",
                "--auth-local=peer", f"--pwfile={pwfile}"])
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {done.stderr.strip()[-300:]}")
    done = run([f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "60", "-o",
                f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}", "start"])
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {done.stderr.strip()[-300:]}")
    url = f"postgresql://teamllm:{PASSWORD.replace('/', '%2F').replace('@', '%40').replace(' ', '%20')}@127.0.0.1:{port}/webui"
    env = {**os.environ, **_backup.pg_env(url.replace("/webui", "/postgres"))}
    subprocess.run(["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE webui"],
                   env=env, check=True, capture_output=True)
    subprocess.run(["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-c", SCHEMA],
                   env={**os.environ, **_backup.pg_env(url)}, check=True, capture_output=True)
    try:
        yield url
    finally:
        run([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def _sql(url, query):
    return subprocess.run(["psql", "--no-psqlrc", "-At", "-v", "ON_ERROR_STOP=1", "-c", query],
                          env={**os.environ, **_backup.pg_env(url)}, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_pg_env_reads_the_url_without_a_command_line():
    env = _backup.pg_env("postgresql://web%40ui:p%2Fw@db.example.org:5433/open-webui?sslmode=verify-full")
    assert env == {"PGDATABASE": "open-webui", "PGHOST": "db.example.org", "PGPORT": "5433",
                   "PGUSER": "web@ui", "PGPASSWORD": "p/w", "PGSSLMODE": "verify-full"}
    with pytest.raises(_backup.BackupError, match="open_webui_database_url"):
        _backup.pg_env("sqlite:///data/webui.db")


def test_dump_check_and_restore_bring_the_rows_back(server, tmp_path):
    record = _backup.pg_record(server)
    assert record == {"alembic_revisions": ["3781e22d8b01"], "peewee_migration": "", "users": 2, "chats": 3,
                      "database": "postgresql"}
    dump = str(tmp_path / "open-webui" / "webui.pgdump")
    _backup.pg_dump(server, dump)
    assert _backup.pg_dump_check(dump) == "ok"
    # the data changes and is lost after the backup
    _sql(server, "DELETE FROM chat; INSERT INTO chat VALUES ('c9', 'u2', 'after the backup'); DROP TABLE \"user\"")
    _backup.pg_restore(server, dump)
    assert _sql(server, "SELECT string_agg(id, ',' ORDER BY id) FROM chat") == "c1,c2,c3"
    assert _backup.pg_record(server)["users"] == 2


def test_a_damaged_dump_fails_its_check_and_a_wrong_password_says_so_without_printing_it(server, tmp_path):
    dump = tmp_path / "damaged.pgdump"
    dump.write_bytes(b"PGDMP" + b"\0" * 64)
    assert _backup.pg_dump_check(str(dump)) != "ok"
    wrong = server.replace("s3cret", "wrong")
    with pytest.raises(_backup.BackupError, match="pg_dump failed: .*password authentication failed") as err:
        _backup.pg_dump(wrong, str(tmp_path / "x.pgdump"))
    assert "wrong" not in str(err.value) and "s3cret" not in str(err.value)


def test_stage_prepare_and_apply_through_the_tool(server, tmp_path, monkeypatch):
    """The tool's own path: stage dumps and records; verify_scratch checks the dump; apply
    restores it (restic stood in by a copy of the staging directory as a restore would make)."""
    url_file = tmp_path / "url"
    url_file.write_text(server + "\n")
    staging = tmp_path / "staging"
    config = {"staging_dir": str(staging), "paths": [], "host": "n1",
              "webui": {"database_url_file": str(url_file), "venv": str(tmp_path / "novenv")}}
    manifest = _backup.stage(config)
    assert manifest["postgres_dump"] == str(staging / _backup.STAGED_PG_DUMP)
    assert manifest["open_webui"]["chats"] == 3 and manifest["restore_to"] == {}
    scratch = tmp_path / "scratch"
    shutil.copytree(staging, scratch / str(staging).lstrip("/"))
    assert _backup.verify_scratch(str(scratch), manifest) == []
    _sql(server, "DELETE FROM chat")
    result = _backup.cmd_apply(config, type("A", (), {"scratch": str(scratch)})())
    assert result["changed"] and _sql(server, "SELECT count(*) FROM chat") == "3"
