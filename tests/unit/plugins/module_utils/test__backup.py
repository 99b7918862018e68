# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The backup tool (plugins/module_utils/_backup.py): its logic, and with Debian's restic (the
unit stage installs it) a real repository: backup, drill, restore, and the faults of SECURITY.md
rows 24-27 and 39 (a full disk is proven on a real small filesystem in molecule/open_webui)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _backup

ALEMBIC = {
    "a_init.py": "revision: str = 'aaa111'\ndown_revision: Union[str, None] = None\n",
    "b_next.py": 'revision = "bbb222"\ndown_revision = "aaa111"\n',
    "c_side.py": "revision: str = 'ccc333'\ndown_revision: str | None = 'aaa111'\n",
    "d_merge.py": "revision: str = 'ddd444'\ndown_revision = ('bbb222', 'ccc333')\n",
}


def test_migration_graph_finds_revisions_and_the_head_after_a_merge():
    revisions, heads = _backup.migration_graph(ALEMBIC)
    assert revisions == {"aaa111", "bbb222", "ccc333", "ddd444"}
    assert heads == {"ddd444"}


INSTALLED = {"version": "0.12.4", "revisions": ["aaa111", "bbb222", "ccc333", "ddd444"], "heads": ["ddd444"]}


@pytest.mark.parametrize("record", [
    {},
    {"open_webui_version": "0.12.4", "alembic_revisions": ["ddd444"]},
    {"open_webui_version": "0.11.0", "alembic_revisions": ["bbb222"]},  # older: Open WebUI migrates it
])
def test_restore_allowed_for_the_same_or_an_older_schema(record):
    assert _backup.restore_refusal(record, INSTALLED) == ""


def test_restore_refused_for_a_revision_the_installed_open_webui_does_not_know():
    why = _backup.restore_refusal({"open_webui_version": "0.12.4", "alembic_revisions": ["fff999"]}, INSTALLED)
    assert "fff999" in why and "ddd444" in why and "0.12.4" in why and "nothing was changed" in why


def test_restore_refused_for_a_newer_open_webui_version_naming_both():
    why = _backup.restore_refusal({"open_webui_version": "0.13.0", "alembic_revisions": ["ddd444"]}, INSTALLED)
    assert "Open WebUI 0.13.0" in why and "installed Open WebUI 0.12.4" in why


def test_version_key_orders_numerically():
    assert _backup.version_key("0.12.10") > _backup.version_key("0.12.9") > _backup.version_key("0.9")


@pytest.mark.parametrize("policy, args", [
    ({"daily": 7, "weekly": 4, "monthly": 0}, ["--keep-daily", "7", "--keep-weekly", "4"]),
    ({"last": 3}, ["--keep-last", "3"]),
])
def test_forget_args(policy, args):
    assert _backup.forget_args(policy) == args


def test_a_policy_that_keeps_nothing_is_refused():
    with pytest.raises(_backup.BackupError, match="keeps nothing"):
        _backup.forget_args({"daily": 0})


@pytest.mark.parametrize("previous, total, subset", [(0, 12, 1), (1, 12, 2), (12, 12, 1), (5, 1, 1)])
def test_check_subset_rotates(previous, total, subset):
    assert _backup.next_subset(previous, total) == subset


@pytest.mark.parametrize("stderr, words", [
    ("Fatal: wrong password or no key found", "wrong password"),
    ("unable to create lock in backend: repository is already locked by PID 7 on n1 by root", "locked"),
    ("Fatal: unable to save snapshot: write /r/data/x: no space left on device", "disk is full"),
    ("Fatal: unable to open config file: stat /r/config: no such file or directory\n"
     "Is there a repository at the following location?", "no restic repository"),
    ("Host key verification failed.", "pinned"),
    ("Fatal: repository contains errors", "damaged"),
    ("something else", ""),
])
def test_restic_problem_says_what_a_failure_means(stderr, words):
    assert (words in _backup.restic_problem(stderr)) if words else _backup.restic_problem(stderr) == ""


def test_sftp_repository_pins_host_keys_and_uses_the_key():
    repo = _backup.repository({"config_dir": "/etc/b"}, {"name": "off", "repository": "sftp:restic@sftp1:/srv/r"})
    assert repo["password_file"] == "/etc/b/off.password"
    option = repo["options"][0]
    assert "StrictHostKeyChecking=yes" in option and "UserKnownHostsFile=/etc/b/known_hosts" in option
    assert "-i /etc/b/sftp_key" in option and option.endswith("restic@sftp1 -s sftp")
    assert _backup.repository({}, {"name": "l", "repository": "/srv/r"})["options"] == []


def test_restic_env_reads_credentials_from_the_env_file_and_drops_the_callers(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTIC_PASSWORD", "from-the-caller")
    (tmp_path / "s3.env").write_text("AWS_ACCESS_KEY_ID=id\nAWS_SECRET_ACCESS_KEY=se=cret\n")
    env = _backup.restic_env({"repository": "s3:https://h/b", "password_file": "/p",
                              "env_file": str(tmp_path / "s3.env")})
    assert "RESTIC_PASSWORD" not in env
    assert env["AWS_SECRET_ACCESS_KEY"] == "se=cret" and env["RESTIC_PASSWORD_FILE"] == "/p"


def test_metrics_keep_the_last_success_after_a_failure(tmp_path):
    config = {"state_dir": str(tmp_path / "state"), "metrics_file": str(tmp_path / "m" / "teamllm_backup.prom")}
    _backup.record_result(config, "backup", "local", True, now=1000)
    _backup.record_result(config, "backup", "local", False, now=2000)
    text = Path(config["metrics_file"]).read_text()
    assert 'teamllm_backup_last_success_timestamp_seconds{task="backup",repository="local"} 1000' in text
    assert 'teamllm_backup_last_run_success{task="backup",repository="local"} 0' in text
    assert 'teamllm_backup_last_run_timestamp_seconds{task="backup",repository="local"} 2000' in text


def _webui_db(path: Path, users=2, chats=3, revision="ddd444"):
    con = sqlite3.connect(path)
    con.executescript(f"""
        PRAGMA journal_mode=WAL;
        CREATE TABLE alembic_version (version_num TEXT PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('{revision}');
        CREATE TABLE user (id TEXT PRIMARY KEY, name TEXT);
        CREATE TABLE chat (id TEXT PRIMARY KEY, user_id TEXT, chat TEXT);
    """)
    con.executemany("INSERT INTO user VALUES (?, ?)", [(f"u{i}", f"user {i}") for i in range(users)])
    con.executemany("INSERT INTO chat VALUES (?, ?, ?)", [(f"c{i}", "u0", "x" * 500) for i in range(chats)])
    con.commit()
    con.close()


def test_the_copy_of_a_database_being_written_passes_integrity_check(tmp_path):
    """Row 25 (the logic): a copy taken while another connection writes is consistent."""
    db = tmp_path / "webui.db"
    _webui_db(db, chats=0)
    db.chmod(0o640)
    stop = threading.Event()

    def write():
        con = sqlite3.connect(db, timeout=30)
        i = 0
        while not stop.is_set():
            con.execute("INSERT INTO chat VALUES (?, 'u0', ?)", (f"w{i}", "y" * 2000))
            con.commit()
            i += 1
        con.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for n in range(5):
            _backup.copy_database(str(db), str(tmp_path / f"copy{n}.db"))
            assert _backup.integrity(str(tmp_path / f"copy{n}.db")) == "ok"
    finally:
        stop.set()
        writer.join()
    assert _backup.database_record(str(tmp_path / "copy4.db"))["chats"] > 0
    # restored as the live database: the original's owner and mode
    assert (tmp_path / "copy4.db").stat().st_mode & 0o777 == 0o640


def test_integrity_names_a_damaged_database(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    assert _backup.integrity(str(bad)) != "ok"


# --- with a real restic -----------------------------------------------------------------------

needs_restic = pytest.mark.skipif(not shutil.which("restic"), reason="restic is not installed "
                                  "(tests/run.sh unit installs Debian's restic)")


@pytest.fixture
def node(tmp_path):
    """A fake node: Open WebUI's database and venv, a config dir, a local repository."""
    data = tmp_path / "webui"
    data.mkdir()
    _webui_db(data / "webui.db")
    (data / "uploads").mkdir()
    (data / "uploads" / "doc.txt").write_text("an upload\n")
    versions = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "open_webui" / "migrations" / "versions"
    versions.mkdir(parents=True)
    for name, text in ALEMBIC.items():
        (versions / name).write_text(text)
    (versions.parents[2] / "open_webui-0.12.4.dist-info").mkdir()
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "plan.json").write_text('{"models": 1}\n')
    confdir = tmp_path / "conf"
    confdir.mkdir()
    (confdir / "local.password").write_text("correct horse battery staple")
    config = {"host": "n1", "restic": "restic", "staging_dir": str(tmp_path / "state" / "staging"),
              "state_dir": str(tmp_path / "state"), "metrics_file": str(tmp_path / "prom" / "teamllm_backup.prom"),
              "paths": [str(etc), str(data / "uploads")], "config_dir": str(confdir),
              "webui": {"database": str(data / "webui.db"), "venv": str(tmp_path / "venv")},
              "retention": {"last": 2}, "check_subsets": 3,
              "repositories": [{"name": "local", "repository": str(tmp_path / "repo")}]}
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    os.environ["RESTIC_CACHE_DIR"] = str(tmp_path / "cache")
    return SimpleNamespace(tmp=tmp_path, data=data, etc=etc, config=config, file=str(config_file), confdir=confdir)


def tool(node, *args):
    return subprocess.run(["python3", _backup.__file__, "--config", node.file, *args],
                          capture_output=True, text=True, timeout=120)


@needs_restic
def test_backup_drill_and_restore_with_a_real_restic(node):
    assert json.loads(tool(node, "init").stdout)["changed"] is True
    assert json.loads(tool(node, "init").stdout)["changed"] is False
    done = tool(node, "run")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["open_webui"]["chats"] == 3
    drill = tool(node, "drill", "--scratch", str(node.tmp / "drill"))
    assert drill.returncode == 0, drill.stderr
    assert json.loads(drill.stdout)["chats"] == 3 and not (node.tmp / "drill").exists()
    assert 'teamllm_backup_last_run_success{task="drill",repository="local"} 1' in Path(
        node.config["metrics_file"]).read_text()
    # data destroyed, then restored from the snapshot
    (node.data / "webui.db").unlink()
    (node.data / "uploads" / "doc.txt").write_text("damaged")
    (node.etc / "plan.json").unlink()
    scratch = str(node.tmp / "scratch")
    assert tool(node, "prepare", "--scratch", scratch).returncode == 0
    applied = tool(node, "apply", "--scratch", scratch)
    assert applied.returncode == 0, applied.stderr
    assert _backup.database_record(str(node.data / "webui.db"))["chats"] == 3
    assert (node.data / "uploads" / "doc.txt").read_text() == "an upload\n"
    assert (node.etc / "plan.json").exists()
    check = tool(node, "check")
    assert check.returncode == 0 and "1/3" in check.stdout


@needs_restic
def test_a_newer_schema_is_refused_and_nothing_changes(node):
    """Row 39."""
    tool(node, "init")
    con = sqlite3.connect(node.data / "webui.db")
    con.execute("UPDATE alembic_version SET version_num = 'fff999'")
    con.commit()
    con.close()
    # made by another configuration (its own staging directory), as molecule/open_webui does
    other = node.tmp / "other.json"
    other.write_text(json.dumps({**node.config, "staging_dir": str(node.tmp / "other-staging"), "paths": []}))
    made = subprocess.run(["python3", _backup.__file__, "--config", str(other), "run"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    before = _backup.sha256(str(node.data / "webui.db"))
    done = tool(node, "prepare", "--scratch", str(node.tmp / "scratch"))
    assert done.returncode == 1
    assert "fff999" in done.stderr and "0.12.4" in done.stderr and "ddd444" in done.stderr
    assert _backup.sha256(str(node.data / "webui.db")) == before


@needs_restic
def test_wrong_password_fails_once_with_a_clear_message(node):
    """Row 27: a wrong password."""
    tool(node, "init")
    (node.confdir / "local.password").write_text("not the password at all")
    start = time.monotonic()
    done = tool(node, "run")
    assert done.returncode == 1
    assert "wrong password" in done.stderr and "not the password" not in done.stderr + done.stdout
    assert time.monotonic() - start < 30
    assert 'teamllm_backup_last_run_success{task="backup",repository="local"} 0' in Path(
        node.config["metrics_file"]).read_text()


@needs_restic
def test_a_locked_repository_fails_once_with_a_clear_message(node):
    """Row 27: a repository locked by another restic (one that holds its lock while it reads stdin)."""
    tool(node, "init")
    assert tool(node, "run").returncode == 0
    env = _backup.restic_env(_backup.repository(node.config, node.config["repositories"][0]))
    holder = subprocess.Popen(["restic", "backup", "--stdin"], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        locks = node.tmp / "repo" / "locks"
        for _ in range(100):
            if any(locks.iterdir()):
                break
            time.sleep(0.1)
        start = time.monotonic()
        done = tool(node, "check")
        assert done.returncode == 1
        assert "locked by another restic" in done.stderr and "not retried" in done.stderr
        assert time.monotonic() - start < 30
    finally:
        holder.communicate(b"", timeout=60)
    assert tool(node, "check").returncode == 0


@needs_restic
def test_a_corrupted_repository_fails_the_check_loudly(node):
    """Row 26."""
    tool(node, "init")
    assert tool(node, "run").returncode == 0
    packs = sorted(p for p in (node.tmp / "repo" / "data").rglob("*") if p.is_file())
    for pack in packs:
        data = bytearray(pack.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pack.chmod(0o600)
        pack.write_bytes(bytes(data))
    node.config["check_subsets"] = 1
    Path(node.file).write_text(json.dumps(node.config))
    done = tool(node, "check")
    assert done.returncode == 1 and "FAILED" in done.stderr and "restic check failed" in done.stderr


# --- the container install: Open WebUI's version and migrations read out of its container -------

def _docker_double(files: dict, fail: str = ""):
    """Stands in for `docker cp <container>:<path> <dest>`: copies from ``files`` (image path ->
    text, or a dict of file name -> text for a directory); fails for ``fail``."""
    calls = []

    def run(argv, **_kwargs):
        calls.append(argv)
        _docker, verb, source, dest = argv
        container, path = source.split(":", 1)
        if verb != "cp" or container != "teamllm-open-webui" or path == fail or path not in files:
            return SimpleNamespace(returncode=1, stdout="", stderr=f"Error: No such container:path: {source}")
        content = files[path]
        if isinstance(content, dict):
            os.makedirs(dest)
            for name, text in content.items():
                Path(dest, name).write_text(text)
        else:
            Path(dest).write_text(content)
        return SimpleNamespace(returncode=0, stdout="", stderr="")
    run.calls = calls
    return run


IMAGE = {_backup.CONTAINER_MIGRATIONS: ALEMBIC, _backup.CONTAINER_PACKAGE_JSON: '{"name": "open-webui", "version": "0.12.4"}'}


def test_the_container_install_is_read_from_its_container():
    run = _docker_double(IMAGE)
    found = _backup.container_webui("teamllm-open-webui", "/usr/bin/docker", run)
    assert found == INSTALLED
    assert [c[:2] for c in run.calls] == [["/usr/bin/docker", "cp"]] * 2
    # what the restore compares a snapshot with: the same schema is allowed, a newer one refused
    assert _backup.restore_refusal({"open_webui_version": "0.12.4", "alembic_revisions": ["ddd444"]}, found) == ""
    assert "fff999" in _backup.restore_refusal({"open_webui_version": "0.12.4", "alembic_revisions": ["fff999"]}, found)


def test_a_container_that_cannot_be_read_fails_naming_it():
    run = _docker_double(IMAGE, fail=_backup.CONTAINER_MIGRATIONS)
    with pytest.raises(_backup.BackupError, match="container teamllm-open-webui .*No such container:path"):
        _backup.container_webui("teamllm-open-webui", "docker", run)


def test_installed_picks_the_container_or_the_venv(tmp_path, monkeypatch):
    monkeypatch.setattr(_backup, "container_webui", lambda container, docker: {"from": container, "docker": docker})
    assert _backup.installed({"container": "teamllm-open-webui", "venv": "/nowhere"}) == \
        {"from": "teamllm-open-webui", "docker": "docker"}
    # the venv install: no container named; a venv that is not there is an unknown Open WebUI
    assert _backup.installed({"container": "", "venv": str(tmp_path / "none")}) == \
        {"version": "", "revisions": [], "heads": []}
