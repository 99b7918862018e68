"""The backup role's configuration, backup and drill steps, run for real through ansible-playbook
on the controller at -vvv with Debian's restic and a local repository in a temporary directory
(the role's paths pointed there with extra vars): the files holding secrets are 0600, a second
run changes nothing, the backup and the drill succeed, and no password or key is printed. A bad
repository list fails validation before any host is touched, without quoting the password."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_validate_playbook import REPO, ansible_playbook, run_site, untouched  # noqa: E402

PASSWORD = "Restic-Pass-" + "v2Cx7Qr4Ue9Wy3"
SFTP_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nSftp-Key-" + "w3Dy8Rs5Vf0Xz4\n-----END OPENSSH PRIVATE KEY-----"
S3_SECRET = "S3-Secret-" + "x4Ez9St6Wg1Ya5"

PLAY = """
- name: The backup role's steps on the controller
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Configure
      ansible.builtin.include_role:
        name: teamllm.stack.backup
        tasks_from: configure.yml
    - name: Back up now
      ansible.builtin.include_role:
        name: teamllm.stack.backup
        tasks_from: now.yml
    - name: Drill
      ansible.builtin.include_role:
        name: teamllm.stack.backup
        tasks_from: drill.yml
"""


@pytest.mark.skipif(not shutil.which("restic") or os.geteuid() != 0,
                    reason="needs Debian's restic (tests/run.sh installs it) and root (the role's files are root's)")
def test_configure_backup_and_drill_print_no_secret_at_vvv(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "plan.json").write_text('{"models": []}\n')
    config = tmp_path / "etc"
    tool = tmp_path / "teamllm-backup"
    tool.write_text(f"#!/bin/sh\nexec python3 {REPO / 'plugins' / 'module_utils' / '_backup.py'} "
                    f"--config {config / 'config.json'} \"$@\"\n")
    tool.chmod(0o755)
    extra = {
        "ansible_python_interpreter": sys.executable,
        "_backup_config_dir": str(config),
        "_backup_tool": str(tool),
        "backup_state_dir": str(tmp_path / "state"),
        "backup_metrics_dir": str(tmp_path / "metrics"),
        "backup_extra_paths": [str(data)],
        "backup_retention": {"last": 3},
        "backup_repositories": [
            {"name": "local", "repository": str(tmp_path / "repo"), "password": PASSWORD,
             "env": {"AWS_SECRET_ACCESS_KEY": S3_SECRET}}],
        "backup_sftp_private_key": SFTP_KEY,
        "backup_sftp_known_hosts": "sftp-repo ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0000",
    }
    (tmp_path / "extra.yml").write_text(yaml.safe_dump(extra))
    (tmp_path / "play.yml").write_text(PLAY)
    args = ["-vvv", "-i", "localhost,", "-e", f"@{tmp_path / 'extra.yml'}", tmp_path / "play.yml"]
    env_cache = os.environ.get("RESTIC_CACHE_DIR")
    os.environ["RESTIC_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        rc, out = ansible_playbook(args, REPO, timeout=300)
        assert rc == 0, out[-4000:]
        rc2, out2 = ansible_playbook(args, REPO, timeout=300)
    finally:
        if env_cache is None:
            os.environ.pop("RESTIC_CACHE_DIR", None)
        else:
            os.environ["RESTIC_CACHE_DIR"] = env_cache
    assert rc2 == 0, out2[-4000:]
    for text in (out, out2):
        for secret in (PASSWORD, "w3Dy8Rs5Vf0Xz4", S3_SECRET):
            assert secret not in text, "a secret was printed"
    for name in ("local.password", "local.env", "sftp_key", "config.json"):
        assert stat.S_IMODE((config / name).stat().st_mode) == 0o600, name
    assert (config / "local.password").read_text() == PASSWORD
    assert PASSWORD not in (config / "config.json").read_text()
    # the second run made nothing new (the repository exists) except the backup it was asked for
    recap = [line for line in out2.splitlines() if line.startswith("localhost")][-1]
    assert "changed=1 " in recap, recap
    metrics = (tmp_path / "metrics" / "teamllm_backup.prom").read_text()
    assert 'teamllm_backup_last_run_success{task="backup",repository="local"} 1' in metrics
    assert 'teamllm_backup_last_run_success{task="drill",repository="local"} 1' in metrics


def test_bad_backup_repositories_fail_validation_before_any_host_without_the_password(tmp_path):
    rc, out = run_site(tmp_path, {
        "llm_api_clients": [{"name": "alice", "key": "Zq4v8XkP2mW9rT6yB1nC5hJ7dF3gL0sA-_xE"}],
        "gateway_routes": {"m": ["127.0.0.1:8081"]},
        "backup_repositories": [{"name": "offsite", "repository": "sftp:restic@b1:/srv/r", "password": "Short-pw1"}],
    }, groups=("gateway", "llm_nodes", "backup"))
    assert rc != 0 and untouched(out)
    assert "host node1: backup_repositories[0].password is missing or shorter than 12 characters" in out, out[-3000:]
    assert "host node1: backup_sftp_private_key is empty, but an SFTP repository is configured" in out
    assert "Short-pw1" not in out


CA_KEY = "-----BEGIN PRIVATE KEY-----\nCa-Key-" + "q7Lm2Np9Rt4Vx8\n-----END PRIVATE KEY-----\n"
CA_PLAYS = """
- name: Name the gateways' private CA on the controller (as playbooks/backup.yml)
  hosts: gateway
  gather_facts: false
  tasks:
    - name: Read where the private CA lives
      ansible.builtin.include_role:
        name: teamllm.stack.gateway
        tasks_from: ca_dir.yml

- name: Back up, the private CA staged for this run (as playbooks/backup.yml)
  hosts: backup
  gather_facts: false
  tasks:
    - name: Configure
      ansible.builtin.include_role:
        name: teamllm.stack.backup
        tasks_from: configure.yml
    - name: Back up
      block:
        - name: Stage the CA
          ansible.builtin.include_role:
            name: teamllm.stack.backup
            tasks_from: controller_ca.yml
        - name: Back up now
          ansible.builtin.include_role:
            name: teamllm.stack.backup
            tasks_from: now.yml
      always:
        - name: Remove the staged CA
          ansible.builtin.include_role:
            name: teamllm.stack.backup
            tasks_from: controller_ca_remove.yml
"""
CA_RESTORE = """
- name: The first steps of restore.yml, the CA back to the controller (no service is stopped here)
  hosts: backup
  gather_facts: false
  tasks:
    - name: Restore into the scratch directory and verify
      ansible.builtin.command:
        argv: ["{{ _backup_tool }}", prepare, --snapshot, latest, --scratch, "{{ _backup_scratch_dir }}"]
      changed_when: false
      vars: {_backup_tool: "%(tool)s", _backup_scratch_dir: "%(state)s/scratch"}
    - name: The CA back
      block:
        - name: Put the snapshot's private CA back on the controller
          ansible.builtin.include_role:
            name: teamllm.stack.backup
            tasks_from: controller_ca_restore.yml
      always:
        - name: Remove the CA from the scratch directory
          ansible.builtin.file:
            path: "%(state)s/scratch%(state)s/staging/controller-ca"
            state: absent
"""


@pytest.mark.skipif(not shutil.which("restic") or os.geteuid() != 0,
                    reason="needs Debian's restic (tests/run.sh installs it) and root (the role's files are root's)")
def test_the_controller_ca_goes_into_the_snapshot_only_and_comes_back_to_the_controller(tmp_path):
    ca = tmp_path / "controller" / "ca"
    ca.mkdir(parents=True, mode=0o700)
    (ca / "ca.key").write_text(CA_KEY)
    (ca / "ca.key").chmod(0o600)
    (ca / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nCa-Crt\n-----END CERTIFICATE-----\n")
    config, state = tmp_path / "etc", tmp_path / "state"
    tool = tmp_path / "teamllm-backup"
    tool.write_text(f"#!/bin/sh\nexec python3 {REPO / 'plugins' / 'module_utils' / '_backup.py'} "
                    f"--config {config / 'config.json'} \"$@\"\n")
    tool.chmod(0o755)
    extra = {
        "ansible_python_interpreter": sys.executable,
        "_backup_config_dir": str(config), "_backup_tool": str(tool),
        "backup_state_dir": str(state), "backup_metrics_dir": str(tmp_path / "metrics"),
        "backup_retention": {"last": 3}, "gateway_ca_dir": str(ca),
        "backup_repositories": [{"name": "local", "repository": str(tmp_path / "repo"), "password": PASSWORD}],
    }
    (tmp_path / "extra.yml").write_text(yaml.safe_dump(extra))
    (tmp_path / "hosts.ini").write_text("[gateway]\nlocalhost ansible_connection=local\n"
                                        "[backup]\nlocalhost ansible_connection=local\n")
    (tmp_path / "backup.yml").write_text(CA_PLAYS)
    (tmp_path / "restore.yml").write_text(CA_RESTORE % {"tool": tool, "state": state})
    common = ["-vvv", "-i", tmp_path / "hosts.ini", "-e", f"@{tmp_path / 'extra.yml'}"]
    env_cache = os.environ.get("RESTIC_CACHE_DIR")
    os.environ["RESTIC_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        rc, out = ansible_playbook([*common, tmp_path / "backup.yml"], REPO, timeout=300)
        assert rc == 0, out[-4000:]
        staged = state / "staging" / "controller-ca"
        assert not staged.exists(), "the CA was left on the host"
        manifest = json.loads((state / "staging" / "manifest.json").read_text())
        keys = [p for p in manifest["files"] if p.startswith(f"{staged}/") and p.endswith("/ca.key")]
        assert len(keys) == 1, manifest["files"]
        # the controller lost its CA; the restore brings the very key back, 0600 in a 0700 directory
        shutil.move(ca, tmp_path / "controller" / "ca.lost")
        rc2, out2 = ansible_playbook([*common, "-e", '{"backup_restore_controller_ca": true}',
                                      tmp_path / "restore.yml"], REPO, timeout=300)
        assert rc2 == 0, out2[-4000:]
        assert (ca / "ca.key").read_text() == CA_KEY
        assert stat.S_IMODE((ca / "ca.key").stat().st_mode) == 0o600
        assert stat.S_IMODE(ca.stat().st_mode) == 0o700
        assert not (state / "scratch" / str(staged).lstrip("/")).exists(), "the CA was left in the scratch directory"
        # another key there is refused, and not replaced
        (ca / "ca.key").write_text("another key\n")
        rc3, out3 = ansible_playbook([*common, "-e", '{"backup_restore_controller_ca": true}',
                                      tmp_path / "restore.yml"], REPO, timeout=300)
        assert rc3 != 0 and "already holds another CA key" in out3, out3[-3000:]
        assert (ca / "ca.key").read_text() == "another key\n"
    finally:
        if env_cache is None:
            os.environ.pop("RESTIC_CACHE_DIR", None)
        else:
            os.environ["RESTIC_CACHE_DIR"] = env_cache
    for text in (out, out2, out3):
        assert "q7Lm2Np9Rt4Vx8" not in text, "the CA key was printed"
        assert PASSWORD not in text
