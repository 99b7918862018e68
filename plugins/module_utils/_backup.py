# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Backups with restic: the logic of the node's C(teamllm-backup) tool (the backup role copies
this file to the node and runs it from systemd and from the backup, restore and drill plays).

Standard library only, Python 3.9+ on the node. What it does:

- ``stage``: Open WebUI's SQLite database copied with SQLite's online backup API while Open WebUI
  runs, ``PRAGMA integrity_check`` on the copy, and a record of Open WebUI's version, its alembic
  revision (``alembic_version``), its peewee ``migratehistory`` (when the table exists) and the
  numbers of users and chats; a manifest of every file's sha256.
- ``run``: stage, then ``restic backup`` to every repository, ``restic forget --prune`` by the
  retention policy, and a node_exporter textfile metric per repository.
- ``check``: ``restic check --read-data-subset n/N``, n rotating from run to run.
- ``prepare`` / ``apply``: restore a snapshot into a scratch directory, verify it (checksums,
  integrity, refuse a schema newer than the installed Open WebUI), then put the files in place.
- ``drill``: restore the latest snapshot into a scratch directory, open the database read-only
  and compare its users and chats with the numbers recorded at backup time.

The repository's password is read by restic from a 0600 file (``RESTIC_PASSWORD_FILE``), never
passed on a command line; a failed restic call is reported once with what it means (wrong
password, locked repository, no space left) and never retried.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

MANIFEST = "manifest.json"
RECORD = "open-webui.json"
STAGED_DB = "open-webui/webui.db"
# What a restic failure means, from its message (restic 0.14 exits 1 for all of them).
_RESTIC_ERRORS = (
    (re.compile(r"wrong password|no key found", re.I),
     "wrong password: the repository's password (backup_repositories[].password) does not open it"),
    (re.compile(r"already locked|unable to create lock", re.I),
     "the repository is locked by another restic process; not retried. When none runs any more "
     "(a crashed one leaves its lock), remove the stale lock with `teamllm-backup unlock`"),
    (re.compile(r"no space left on device|disk quota exceeded", re.I),
     "the repository's disk is full: free space or move the repository; earlier snapshots are kept"),
    (re.compile(r"unable to open config file|is there a repository at the following location", re.I),
     "no restic repository there: it is made by the backup role (`teamllm-backup init`)"),
    (re.compile(r"host key verification failed|REMOTE HOST IDENTIFICATION", re.I),
     "the SFTP host's key is not the pinned one (backup_sftp_known_hosts)"),
    (re.compile(r"Fatal: repository contains errors|error for tree|pack .* (damaged|contains)|ciphertext verification failed", re.I),
     "the repository is damaged: `restic check` found errors"),
)


class BackupError(Exception):
    """A failure the tool reports in one line and exits non-zero for."""


def restic_problem(stderr: str) -> str:
    """What a failed restic call means, from its error output ("" when not recognised)."""
    for pattern, meaning in _RESTIC_ERRORS:
        if pattern.search(stderr or ""):
            return meaning
    return ""


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- SQLite -----------------------------------------------------------------------------------

def integrity(path: str) -> str:
    """``PRAGMA integrity_check`` of a database opened read-only: "ok" or SQLite's first problem."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return f"not a usable SQLite database: {exc}"
    return "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:5])


def copy_database(source: str, dest: str) -> None:
    """A consistent copy of a live SQLite database (the online backup API, one step under one read
    transaction, so writers never make it inconsistent), checked with ``PRAGMA integrity_check``."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    partial = dest + ".partial"
    if os.path.exists(partial):
        os.unlink(partial)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
    try:
        out = sqlite3.connect(partial)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()
    result = integrity(partial)
    if result != "ok":
        os.unlink(partial)
        raise BackupError(f"the copy of {source} fails PRAGMA integrity_check: {result}")
    # the copy is restored as the live database: the owner and mode of the original
    info = os.stat(source)
    os.chown(partial, info.st_uid, info.st_gid)
    os.chmod(partial, info.st_mode & 0o7777)
    os.replace(partial, dest)


_COUNTS = {"user": 'SELECT count(*) FROM "user"', "chat": 'SELECT count(*) FROM "chat"'}


def _count(con, table: str):
    try:
        return con.execute(_COUNTS[table]).fetchone()[0]
    except sqlite3.DatabaseError:
        return None


def database_record(path: str) -> dict:
    """Schema revision (alembic), peewee's last migration, users and chats of Open WebUI's database."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            rows = con.execute("SELECT version_num FROM alembic_version").fetchall()
            revisions = sorted(r[0] for r in rows)
        except sqlite3.DatabaseError:
            revisions = []
        try:
            row = con.execute("SELECT name FROM migratehistory ORDER BY id DESC LIMIT 1").fetchone()
            peewee = row[0] if row else ""
        except sqlite3.DatabaseError:
            peewee = ""
        return {"alembic_revisions": revisions, "peewee_migration": peewee,
                "users": _count(con, "user"), "chats": _count(con, "chat")}
    finally:
        con.close()


# --- Open WebUI's database on PostgreSQL ---------------------------------------------------------
# When Open WebUI's database is PostgreSQL (open_webui_database_url), the backup takes
# `pg_dump --format=custom` (one transaction's snapshot: consistent while Open WebUI writes) and a
# restore `pg_restore --clean --if-exists --single-transaction` of it. The URL holds the
# password: it is read from a 0600 file and handed to the tools as PG* environment variables,
# never on a command line.
STAGED_PG_DUMP = "open-webui/webui.pgdump"
_PG_QUERIES = {
    "alembic": "SELECT version_num FROM alembic_version ORDER BY 1",
    "peewee": "SELECT name FROM migratehistory ORDER BY id DESC LIMIT 1",
    "users": 'SELECT count(*) FROM "user"',
    "chats": "SELECT count(*) FROM chat",
}


def pg_env(url: str) -> dict:
    """libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, and the query's
    sslmode etc.) of a ``postgresql://user:password@host:port/database?...`` URL."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise BackupError("Open WebUI's database URL is not postgresql://user:password@host:port/database "
                          "(open_webui_database_url)")
    env = {"PGDATABASE": unquote(parts.path.lstrip("/"))}
    if parts.hostname:
        env["PGHOST"] = unquote(parts.hostname)
    if parts.port:
        env["PGPORT"] = str(parts.port)
    if parts.username:
        env["PGUSER"] = unquote(parts.username)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    names = {"host": "PGHOST", "port": "PGPORT", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
             "connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME"}
    for key, value in parse_qsl(parts.query):
        if key in names:
            env[names[key]] = value
    return env


def _pg(argv: list[str], url: str, what: str, run=subprocess.run) -> str:
    done = run(argv, env={**os.environ, **pg_env(url)}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or "").strip().splitlines() if line.strip()]
        raise BackupError(f"{what} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout


def pg_record(url: str, run=subprocess.run) -> dict:
    """Schema revision (alembic), peewee's last migration, users and chats of Open WebUI's
    PostgreSQL database, as ``database_record`` reads them from SQLite."""
    found = {}
    for key, query in _PG_QUERIES.items():
        try:
            found[key] = _pg(["psql", "--no-psqlrc", "--no-align", "--tuples-only", "-v", "ON_ERROR_STOP=1",
                              "-c", query], url, f"psql {key}", run).split()
        except BackupError:
            found[key] = None
    return {"alembic_revisions": sorted(found["alembic"] or []), "peewee_migration": (found["peewee"] or [""])[0],
            "users": _first_int(found["users"]), "chats": _first_int(found["chats"]), "database": "postgresql"}


def _first_int(values):
    return int(values[0]) if values else None


def pg_dump(url: str, dest: str, run=subprocess.run) -> None:
    """A consistent dump (``pg_dump --format=custom``: one snapshot) of the database into dest."""
    os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
    _pg(["pg_dump", "--format=custom", "--no-password", "--file", dest], url, "pg_dump", run)


def pg_dump_check(dump: str, run=subprocess.run) -> str:
    """"ok" when ``pg_restore --list`` reads the dump's table of contents, else why not."""
    done = run(["pg_restore", "--list", dump], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return (done.stderr or "").strip().splitlines()[-1] if (done.stderr or "").strip() else "unreadable"
    return "ok" if "TABLE DATA" in done.stdout or "TABLE" in done.stdout else "the dump holds no table"


def pg_restore(url: str, dump: str, run=subprocess.run) -> None:
    """The dump put back in place of the database's objects, all or nothing."""
    database = pg_env(url)["PGDATABASE"]
    _pg(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
         "--no-password", "--dbname", database, dump], url, "pg_restore", run)


def _read_url(webui: dict) -> str:
    with open(webui["database_url_file"], encoding="utf-8") as handle:
        return handle.read().strip()


# --- Open WebUI's installed version and schema ------------------------------------------------

_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([0-9A-Za-z_]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.*)$", re.M)


def migration_graph(sources: dict[str, str]) -> tuple[set[str], set[str]]:
    """The revisions and the heads of alembic migration files (file name -> text)."""
    revisions, parents = set(), set()
    for text in sources.values():
        match = _REVISION.search(text)
        if not match:
            continue
        revisions.add(match.group(1))
        down = _DOWN.search(text)
        if down:
            parents.update(re.findall(r"['\"]([0-9A-Za-z_]+)['\"]", down.group(1)))
    return revisions, revisions - parents


def site_packages(venv: str) -> str:
    """The site-packages directory of a venv ("" when there is none)."""
    lib = os.path.join(venv, "lib")
    found = sorted(n for n in os.listdir(lib) if n.startswith("python")) if os.path.isdir(lib) else []
    return os.path.join(lib, found[-1], "site-packages") if found else ""


def installed_webui(packages: str) -> dict:
    """Version and schema (all alembic revisions, heads) of the Open WebUI installed there."""
    version = ""
    for name in sorted(os.listdir(packages)) if os.path.isdir(packages) else []:
        match = re.fullmatch(r"open_webui-(.+)\.dist-info", name)
        if match:
            version = match.group(1)
    return webui_schema(os.path.join(packages, "open_webui", "migrations", "versions"), version)


# Where the official Open WebUI image keeps its package (not pip-installed: no dist-info) and
# the file its version is read from (open_webui/env.py reads the same package.json).
CONTAINER_MIGRATIONS = "/app/backend/open_webui/migrations/versions"
CONTAINER_PACKAGE_JSON = "/app/package.json"


def container_webui(container: str, docker: str = "docker", run=subprocess.run) -> dict:
    """Version and schema of the Open WebUI of a container (the container install): its
    migrations and package.json copied out with ``docker cp`` (which works on a stopped
    container too). Raises :class:`BackupError` naming the container when they cannot be read
    (a restore is then refused rather than checked against nothing)."""
    with tempfile.TemporaryDirectory() as tmp:
        for source, dest in ((CONTAINER_MIGRATIONS, "versions"), (CONTAINER_PACKAGE_JSON, "package.json")):
            done = run([docker, "cp", f"{container}:{source}", os.path.join(tmp, dest)],
                       capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BackupError(
                    f"cannot read the installed Open WebUI from its container {container} ({source}: "
                    f"{(done.stderr or '').strip()[-200:]}): is it installed (open_webui_install_method: "
                    "container)?")
        try:
            with open(os.path.join(tmp, "package.json"), encoding="utf-8") as handle:
                version = str(json.load(handle).get("version") or "")
        except (OSError, ValueError, AttributeError):
            version = ""
        return webui_schema(os.path.join(tmp, "versions"), version)


def webui_schema(versions: str, version: str) -> dict:
    """{version, revisions, heads} from a directory of alembic migration files."""
    sources = {}
    if os.path.isdir(versions):
        for name in os.listdir(versions):
            if name.endswith(".py"):
                with open(os.path.join(versions, name), encoding="utf-8") as handle:
                    sources[name] = handle.read()
    revisions, heads = migration_graph(sources)
    return {"version": version, "revisions": sorted(revisions), "heads": sorted(heads)}


def installed(webui: dict) -> dict:
    """The installed Open WebUI of the configuration ``webui``: its container's when it names
    one (the container install), else its venv's."""
    if webui.get("container"):
        return container_webui(webui["container"], webui.get("docker") or "docker")
    return installed_webui(site_packages(webui["venv"]))


def version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[.+-]", version or "0") if p)


def restore_refusal(record: dict, installed: dict) -> str:
    """Why a snapshot must not be restored on this Open WebUI ("" when it may): its schema
    revision is one the installed Open WebUI does not know (made by a newer one), or its version
    is newer. Both versions and revisions are named."""
    if not record:
        return ""
    theirs = record.get("alembic_revisions") or []
    unknown = [r for r in theirs if r not in set(installed.get("revisions") or [])]
    newer = version_key(record.get("open_webui_version", "")) > version_key(installed.get("version", ""))
    if not unknown and not newer:
        return ""
    return ("the snapshot's Open WebUI database is newer than the installed Open WebUI: snapshot "
            f"Open WebUI {record.get('open_webui_version') or 'unknown'} at schema revision "
            f"{', '.join(theirs) or 'none'}; installed Open WebUI {installed.get('version') or 'unknown'} "
            f"at schema revision {', '.join(installed.get('heads') or []) or 'none'}"
            + (f" (it does not know revision {', '.join(unknown)})" if unknown else "")
            + ". Upgrade Open WebUI first, or restore an older snapshot; nothing was changed")


# --- files ---------------------------------------------------------------------------------------

def walk_files(paths: list[str]) -> list[str]:
    files = []
    for root in paths:
        if os.path.islink(root):
            continue  # restic keeps the link itself; the roles make their links again
        if os.path.isfile(root):
            files.append(root)
            continue
        for top, dirs, names in os.walk(root):
            dirs.sort()
            files += [os.path.join(top, n) for n in sorted(names)
                      if os.path.isfile(os.path.join(top, n)) and not os.path.islink(os.path.join(top, n))]
    return files


def checksum_problems(root: str, files: dict[str, str]) -> list[str]:
    """Files of the manifest (path -> sha256) that are missing or differ under root."""
    problems = []
    for path, digest in sorted(files.items()):
        here = os.path.join(root, path.lstrip("/")) if root else path
        if not os.path.isfile(here):
            problems.append(f"{path}: missing")
        elif sha256(here) != digest:
            problems.append(f"{path}: checksum differs")
    return problems


# --- metrics ---------------------------------------------------------------------------------

def metrics_text(state: dict) -> str:
    """The node_exporter textfile of the state {task: {repository: {...}}}."""
    lines = [
        "# HELP teamllm_backup_last_success_timestamp_seconds When the task last succeeded.",
        "# TYPE teamllm_backup_last_success_timestamp_seconds gauge",
    ]
    rows = sorted((task, repo, values) for task, repos in state.items() for repo, values in repos.items())
    for task, repo, values in rows:
        if values.get("last_success"):
            lines.append(f'teamllm_backup_last_success_timestamp_seconds{{task="{task}",repository="{repo}"}} '
                         f'{values["last_success"]}')
    lines += ["# HELP teamllm_backup_last_run_success Whether the task's last run succeeded (1) or failed (0).",
              "# TYPE teamllm_backup_last_run_success gauge"]
    for task, repo, values in rows:
        lines.append(f'teamllm_backup_last_run_success{{task="{task}",repository="{repo}"}} {int(values["success"])}')
    lines += ["# HELP teamllm_backup_last_run_timestamp_seconds When the task last ran.",
              "# TYPE teamllm_backup_last_run_timestamp_seconds gauge"]
    for task, repo, values in rows:
        lines.append(f'teamllm_backup_last_run_timestamp_seconds{{task="{task}",repository="{repo}"}} {values["last_run"]}')
    return "\n".join(lines) + "\n"


def record_result(config: dict, task: str, repository: str, success: bool, now: float | None = None) -> None:
    """Keep the result in the state file and rewrite the textfile metric (atomically)."""
    now = int(now if now is not None else time.time())
    path = os.path.join(config["state_dir"], "metrics.json")
    state = _read_json(path, {})
    entry = state.setdefault(task, {}).setdefault(repository, {})
    entry.update({"success": bool(success), "last_run": now})
    if success:
        entry["last_success"] = now
    _write(path, json.dumps(state, indent=1, sort_keys=True))
    if config.get("metrics_file"):
        _write(config["metrics_file"], metrics_text(state), mode=0o644)


def next_subset(previous: int, total: int) -> int:
    """The read-data subset after ``previous`` (1..total, rotating)."""
    return previous % total + 1 if total > 0 else 1


def forget_args(policy: dict) -> list[str]:
    """restic forget's --keep-* flags of a retention policy {daily: 7, weekly: 4, ...}."""
    args = []
    for key in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        if int(policy.get(key) or 0) > 0:
            args += [f"--keep-{key}", str(int(policy[key]))]
    if not args:
        raise BackupError("the retention policy keeps nothing: set at least one of "
                          "backup_retention's last, hourly, daily, weekly, monthly, yearly above 0")
    return args


def _read_json(path: str, default):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def _write(path: str, text: str, mode: int = 0o600) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --- restic ----------------------------------------------------------------------------------

def sftp_command(config_dir: str, target: str) -> str:
    """restic's ssh for an SFTP repository (target: user@host): the role's key, only the pinned
    host keys (StrictHostKeyChecking=yes), never a prompt."""
    return (f"sftp.command=ssh -i {config_dir}/sftp_key -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={config_dir}/known_hosts "
            f"-o ConnectTimeout=15 -o ServerAliveInterval=30 {target} -s sftp")


def repository(config: dict, repo: dict) -> dict:
    """A repository of the configuration with its password file, environment file and options."""
    base = config.get("config_dir", "/etc/teamllm-backup")
    found = {"password_file": f"{base}/{repo['name']}.password", "env_file": f"{base}/{repo['name']}.env",
             "options": [], **repo}
    if repo["repository"].startswith("sftp:") and not repo.get("options"):
        target = repo["repository"][len("sftp:"):].split(":", 1)[0]
        found["options"] = [sftp_command(base, target)]
    return found


def restic_env(repo: dict) -> dict:
    """restic's environment for a repository: its location and password file, plus the
    variables of its environment file (S3 credentials), without the caller's RESTIC_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_"))}
    env.update({"RESTIC_REPOSITORY": repo["repository"], "RESTIC_PASSWORD_FILE": repo["password_file"],
                "RESTIC_CACHE_DIR": repo.get("cache_dir", "/var/cache/teamllm-backup")})
    if repo.get("env_file") and os.path.exists(repo["env_file"]):
        with open(repo["env_file"], encoding="utf-8") as handle:
            for line in handle:
                if "=" in line and not line.lstrip().startswith("#"):
                    key, value = line.rstrip("\n").split("=", 1)
                    env[key.strip()] = value
    return env


def restic(config: dict, repo: dict, *args: str, check: bool = True, capture: bool = True):
    """One restic call on a repository; a failure raises BackupError saying what it means."""
    cmd = [config.get("restic", "restic")]
    for option in repo.get("options") or []:
        cmd += ["-o", option]
    cmd += list(args)
    done = subprocess.run(cmd, env=restic_env(repo), capture_output=capture, text=True, check=False)
    if check and done.returncode != 0:
        stderr = (done.stderr or "").strip()
        meaning = restic_problem(stderr)
        last = stderr.splitlines()[-1] if stderr else f"exit code {done.returncode}"
        raise BackupError(f"repository {repo['name']}: restic {args[0]} failed"
                          + (f": {meaning}" if meaning else "") + f" (restic: {last})")
    return done


# --- commands ---------------------------------------------------------------------------------

def stage(config: dict) -> dict:
    """Copy Open WebUI's database, write its record and the manifest; returns the manifest."""
    staging = config["staging_dir"]
    os.makedirs(staging, mode=0o700, exist_ok=True)
    restore_to = {}
    record = {}
    postgres = ""
    webui = config.get("webui")
    if webui and webui.get("database_url_file"):
        url = _read_url(webui)
        postgres = os.path.join(staging, STAGED_PG_DUMP)
        # counted in its own transaction just before the dump's snapshot
        counted = pg_record(url)
        pg_dump(url, postgres)
        record = {"open_webui_version": installed(webui)["version"], **counted, "taken_at": int(time.time())}
        _write(os.path.join(staging, RECORD), json.dumps(record, indent=1, sort_keys=True))
    elif webui:
        dest = os.path.join(staging, STAGED_DB)
        copy_database(webui["database"], dest)
        restore_to[dest] = webui["database"]
        record = {"open_webui_version": installed(webui)["version"], **database_record(dest),
                  "taken_at": int(time.time())}
        _write(os.path.join(staging, RECORD), json.dumps(record, indent=1, sort_keys=True))
    paths = [p for p in config.get("paths", []) if os.path.exists(p)]
    files = {path: sha256(path) for path in walk_files(paths + [staging])
             if os.path.basename(path) != MANIFEST}
    manifest = {"host": config.get("host", ""), "files": files, "restore_to": restore_to,
                "paths": paths, "open_webui": record, "staging_dir": staging}
    if postgres:
        manifest["postgres_dump"] = postgres
    _write(os.path.join(staging, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def cmd_run(config: dict, args) -> dict:
    try:
        manifest = stage(config)
    except (BackupError, OSError, sqlite3.Error) as exc:
        for repo in _repos(config, args.repository):
            record_result(config, "backup", repo["name"], False)
        raise BackupError(f"staging the files failed, nothing was sent to a repository: {exc}") from exc
    results, failures = {}, []
    for repo in _repos(config, args.repository):
        try:
            restic(config, repo, "backup", "--host", config.get("host", ""), "--tag", "teamllm",
                   *manifest["paths"], config["staging_dir"])
            if not args.no_forget:
                restic(config, repo, "forget", "--prune", "--host", config.get("host", ""),
                       "--tag", "teamllm", *forget_args(config.get("retention") or {}))
            record_result(config, "backup", repo["name"], True)
            results[repo["name"]] = "ok"
        except BackupError as exc:
            record_result(config, "backup", repo["name"], False)
            results[repo["name"]] = str(exc)
            failures.append(str(exc))
    if failures:
        raise BackupError("; ".join(failures))
    return {"repositories": results, "open_webui": manifest["open_webui"], "files": len(manifest["files"])}


def cmd_check(config: dict, args) -> dict:
    results, failures = {}, []
    total = int(config.get("check_subsets") or 1)
    for repo in _repos(config, args.repository):
        path = os.path.join(config["state_dir"], f"check-subset-{repo['name']}")
        previous = int((_read_json(path, {"subset": 0}) or {}).get("subset", 0))
        subset = next_subset(previous, total)
        try:
            restic(config, repo, "check", f"--read-data-subset={subset}/{total}")
            record_result(config, "check", repo["name"], True)
            _write(path, json.dumps({"subset": subset}))
            results[repo["name"]] = f"ok (data subset {subset}/{total})"
        except BackupError as exc:
            record_result(config, "check", repo["name"], False)
            failures.append(str(exc))
    if failures:
        raise BackupError("; ".join(failures))
    return {"repositories": results}


def cmd_init(config: dict, args) -> dict:
    made = []
    for repo in _repos(config, args.repository):
        probe = restic(config, repo, "cat", "config", check=False)
        if probe.returncode == 0:
            continue
        meaning = restic_problem(probe.stderr)
        if meaning and "no restic repository" not in meaning:
            raise BackupError(f"repository {repo['name']}: {meaning} (restic: {probe.stderr.strip().splitlines()[-1]})")
        restic(config, repo, "init")
        made.append(repo["name"])
    return {"changed": bool(made), "initialised": made}


def cmd_unlock(config: dict, args) -> dict:
    for repo in _repos(config, args.repository):
        restic(config, repo, "unlock")
    return {"changed": True}


def cmd_snapshots(config: dict, args) -> dict:
    repo = _repos(config, args.repository)[0]
    done = restic(config, repo, "snapshots", "--json", "--host", config.get("host", ""))
    return {"snapshots": json.loads(done.stdout or "[]")}


def _restore_to_scratch(config: dict, repo: dict, snapshot: str, scratch: str) -> dict:
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    os.makedirs(scratch, mode=0o700)
    if snapshot == "latest":
        restic(config, repo, "restore", "latest", "--host", config.get("host", ""), "--target", scratch)
    else:
        restic(config, repo, "restore", snapshot, "--target", scratch)
    manifest = find_manifest(config, scratch)
    if manifest is None:
        raise BackupError(f"snapshot {snapshot} of repository {repo['name']} holds no {MANIFEST}: "
                          "it was not made by teamllm-backup")
    return manifest


def find_manifest(config: dict, scratch: str):
    """The manifest of a snapshot restored into scratch: in this configuration's staging
    directory, else the one file of that name a snapshot holds at its staging directory."""
    manifest = _read_json(os.path.join(scratch, config["staging_dir"].lstrip("/"), MANIFEST), None)
    if manifest is not None:
        return manifest
    for top, _dirs, names in os.walk(scratch):
        if MANIFEST in names:
            found = _read_json(os.path.join(top, MANIFEST), None)
            if isinstance(found, dict) and "files" in found and \
                    os.path.join(scratch, found.get("staging_dir", "").lstrip("/")) == top:
                return found
    return None


def verify_scratch(scratch: str, manifest: dict) -> list[str]:
    problems = checksum_problems(scratch, manifest["files"])
    for staged in manifest.get("restore_to", {}):
        result = integrity(os.path.join(scratch, staged.lstrip("/")))
        if result != "ok":
            problems.append(f"{staged}: PRAGMA integrity_check: {result}")
    if manifest.get("postgres_dump"):
        result = pg_dump_check(os.path.join(scratch, manifest["postgres_dump"].lstrip("/")))
        if result != "ok":
            problems.append(f"{manifest['postgres_dump']}: pg_restore --list: {result}")
    return problems


def cmd_prepare(config: dict, args) -> dict:
    """Restore into scratch and verify; refuse a newer schema. Nothing live is touched."""
    repo = _repos(config, args.repository)[0]
    manifest = _restore_to_scratch(config, repo, args.snapshot, args.scratch)
    problems = verify_scratch(args.scratch, manifest)
    if problems:
        raise BackupError(f"snapshot {args.snapshot} does not verify: {'; '.join(problems[:10])}; nothing was changed")
    if config.get("webui") and manifest.get("open_webui"):
        refusal = restore_refusal(manifest["open_webui"], installed(config["webui"]))
        if refusal:
            raise BackupError(f"snapshot {args.snapshot} refused: {refusal}")
    return {"snapshot": args.snapshot, "files": len(manifest["files"]), "open_webui": manifest.get("open_webui")}


def cmd_apply(config: dict, args) -> dict:
    """Put the verified files of the scratch directory in place, then verify them there."""
    manifest = find_manifest(config, args.scratch)
    if manifest is None:
        raise BackupError(f"{args.scratch} holds no prepared restore: run `teamllm-backup prepare` first")
    expected = {}
    for path, digest in manifest["files"].items():
        source = os.path.join(args.scratch, path.lstrip("/"))
        dest = manifest["restore_to"].get(path)
        if dest is None:
            if path.startswith(manifest.get("staging_dir", config["staging_dir"]).rstrip("/") + "/"):
                continue
            dest = path
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        partial = dest + ".teamllm-restore"
        shutil.copy2(source, partial)
        info = os.stat(source)
        os.chown(partial, info.st_uid, info.st_gid)
        os.replace(partial, dest)
        for suffix in ("-wal", "-shm", "-journal"):
            if path in manifest["restore_to"] and os.path.exists(dest + suffix):
                os.unlink(dest + suffix)
        expected[dest] = digest
    if manifest.get("postgres_dump"):
        if not (config.get("webui") or {}).get("database_url_file"):
            raise BackupError("the snapshot holds a PostgreSQL dump of Open WebUI's database, but this host's "
                              "Open WebUI has no PostgreSQL database (open_webui_database_url)")
        pg_restore(_read_url(config["webui"]), os.path.join(args.scratch, manifest["postgres_dump"].lstrip("/")))
    problems = checksum_problems("", expected)
    for dest in manifest["restore_to"].values():
        result = integrity(dest)
        if result != "ok":
            problems.append(f"{dest}: PRAGMA integrity_check: {result}")
    if problems:
        raise BackupError(f"the restored files do not verify: {'; '.join(problems[:10])}")
    shutil.rmtree(args.scratch)
    return {"changed": True, "restored": len(expected)}


def cmd_drill(config: dict, args) -> dict:
    """Restore the latest snapshot into scratch, open the database read-only, compare counts."""
    repo = _repos(config, args.repository)[0]
    try:
        manifest = _restore_to_scratch(config, repo, "latest", args.scratch)
        problems = verify_scratch(args.scratch, manifest)
        record = manifest.get("open_webui") or {}
        found = {}
        for staged in manifest.get("restore_to", {}):
            db = os.path.join(args.scratch, staged.lstrip("/"))
            found = database_record(db)
            for key in ("users", "chats"):
                if found.get(key) != record.get(key):
                    problems.append(f"{key}: {found.get(key)} in the restored database, "
                                    f"{record.get(key)} recorded at backup time")
        if problems:
            raise BackupError(f"restore drill from repository {repo['name']} failed: {'; '.join(problems[:10])}")
    except BackupError:
        record_result(config, "drill", repo["name"], False)
        raise
    finally:
        if os.path.exists(args.scratch):
            shutil.rmtree(args.scratch)
    record_result(config, "drill", repo["name"], True)
    return {"repository": repo["name"], "result": "ok", "users": found.get("users"),
            "chats": found.get("chats"), "recorded": {k: record.get(k) for k in ("users", "chats", "taken_at")},
            "files": len(manifest["files"])}


def _repos(config: dict, name: str | None) -> list[dict]:
    repos = config.get("repositories") or []
    if name:
        repos = [r for r in repos if r["name"] == name]
        if not repos:
            known = ", ".join(r["name"] for r in config.get("repositories") or [])
            raise BackupError(f"no repository named {name!r} (known: {known})")
    if not repos:
        raise BackupError("no repository is configured (backup_repositories)")
    return [repository(config, r) for r in repos]


COMMANDS = {"run": cmd_run, "check": cmd_check, "init": cmd_init, "unlock": cmd_unlock,
            "snapshots": cmd_snapshots, "prepare": cmd_prepare, "apply": cmd_apply, "drill": cmd_drill,
            "stage": lambda config, args: {"open_webui": stage(config)["open_webui"]}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="teamllm-backup", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--config", default="/etc/teamllm-backup/config.json")
    parser.add_argument("--repository", help="only this repository (default: all; the first for restores)")
    parser.add_argument("--snapshot", default="latest")
    parser.add_argument("--scratch", default="/var/lib/teamllm-backup/scratch")
    parser.add_argument("--no-forget", action="store_true")
    args = parser.parse_args(argv)
    config = _read_json(args.config, None)
    if config is None:
        sys.stderr.write(f"teamllm-backup: no configuration at {args.config} (made by the backup role)\n")
        return 2
    os.umask(0o077)
    try:
        result = COMMANDS[args.command](config, args)
    except (BackupError, OSError, sqlite3.Error) as exc:
        sys.stderr.write(f"teamllm-backup {args.command} on {config.get('host', '')}: FAILED: {exc}\n")
        return 1
    # the command line installed on the node (roles/backup): its own output, not a module's
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
