# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The GPU node base roles' variable selection, rendered with Ansible's templar for the facts
of each supported distribution (Ubuntu can only be checked this way: its archive is not
reachable from the lab)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from role_files import trust

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "roles"
LOADER = DataLoader()

FACTS = {
    "debian12": {
        "distribution": "Debian",
        "distribution_major_version": "12",
        "distribution_version": "12.12",
        "distribution_release": "bookworm",
    },
    "debian13": {
        "distribution": "Debian",
        "distribution_major_version": "13",
        "distribution_version": "13.2",
        "distribution_release": "trixie",
    },
    "ubuntu2204": {
        "distribution": "Ubuntu",
        "distribution_major_version": "22",
        "distribution_version": "22.04",
        "distribution_release": "jammy",
    },
    "ubuntu2404": {
        "distribution": "Ubuntu",
        "distribution_major_version": "24",
        "distribution_version": "24.04",
        "distribution_release": "noble",
    },
}



def _load(path: Path) -> dict:
    return trust(LOADER.load_from_file(str(path)) or {})


def _variables(role: str, host: str, arch: str = "x86_64", **extra) -> dict:
    facts = dict(FACTS[host], os_family="Debian", architecture=arch, kernel="6.8.0-45-generic")
    variables: dict = {}
    for path in sorted((ROLES / "_common" / "defaults" / "main").glob("*.yml")):
        variables.update(_load(path))
    for path in (ROLES / role / "defaults" / "main.yml", ROLES / role / "vars" / "main.yml"):
        if path.is_file():  # _common's defaults are the directory read above
            variables.update(_load(path))
    dist_vars = ROLES / role / "vars" / f"{facts['distribution']}.yml"
    if dist_vars.exists():
        variables.update(_load(dist_vars))
    variables["ansible_facts"] = facts
    # a member of gpu_nodes, as playbooks/gpu_node_base.yml applies these roles
    variables["inventory_hostname"] = "node1"
    variables["groups"] = {"all": ["node1"], "gpu_nodes": ["node1"]}
    variables.update(extra)
    return variables


def render(role: str, host: str, expr: str, arch: str = "x86_64", **extra):
    templar = Templar(loader=LOADER, variables=_variables(role, host, arch, **extra))
    return templar.template(trust_as_template("{{ " + expr + " }}"))


NO_GPU = {"__nvidia_driver_gpus": []}
ONE_GPU = {"__nvidia_driver_gpus": ["0000:01:00.0"]}


# --- nvidia_driver --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "branch"),
    [("debian12", "535"), ("debian13", "550"), ("ubuntu2204", "570"), ("ubuntu2404", "570")],
)
def test_driver_branch_defaults_to_the_distributions(host, branch):
    assert render("nvidia_driver", host, "_nvidia_driver_branch", **NO_GPU) == branch


@pytest.mark.parametrize("host", ["ubuntu2204", "ubuntu2404"])
def test_ubuntu_server_packages(host):
    assert render("nvidia_driver", host, "_nvidia_driver_packages", **NO_GPU) == [
        "nvidia-headless-570-server",
        "nvidia-utils-570-server",
    ]
    assert (
        render("nvidia_driver", host, "_nvidia_driver_version_package", **NO_GPU)
        == "nvidia-headless-570-server"
    )
    assert render("nvidia_driver", host, "_nvidia_driver_pin", **NO_GPU) is False


@pytest.mark.parametrize("host", ["ubuntu2204", "ubuntu2404"])
def test_ubuntu_desktop_packages_and_pinned_branch(host):
    assert render(
        "nvidia_driver",
        host,
        "_nvidia_driver_packages",
        nvidia_driver_ubuntu_server=False,
        nvidia_driver_branch="580",
        **NO_GPU,
    ) == ["nvidia-driver-580"]


@pytest.mark.parametrize("branch", [580, "580"])
def test_branch_given_as_number_or_string(branch):
    assert (
        render(
            "nvidia_driver", "ubuntu2404", "_nvidia_driver_packages", nvidia_driver_branch=branch, **NO_GPU
        )[0]
        == "nvidia-headless-580-server"
    )


@pytest.mark.parametrize("host", ["debian12", "debian13"])
def test_debian_packages(host):
    packages = render("nvidia_driver", host, "_nvidia_driver_packages", **NO_GPU)
    assert packages[0] == "nvidia-kernel-dkms"
    assert "nvidia-smi" in packages
    assert render("nvidia_driver", host, "_nvidia_driver_pin", **NO_GPU) is True


@pytest.mark.parametrize("host", ["debian12", "ubuntu2404"])
def test_headers_only_where_the_driver_is_installed(host):
    without = render("nvidia_driver", host, "_nvidia_driver_all_packages", **NO_GPU)
    with_gpu = render("nvidia_driver", host, "_nvidia_driver_all_packages", **ONE_GPU)
    forced = render("nvidia_driver", host, "_nvidia_driver_all_packages", nvidia_driver_force=True, **NO_GPU)
    assert "linux-headers-6.8.0-45-generic" not in without
    assert with_gpu == forced == ["linux-headers-6.8.0-45-generic"] + without
    no_headers = render(
        "nvidia_driver",
        host,
        "_nvidia_driver_all_packages",
        nvidia_driver_kernel_headers_package="",
        **ONE_GPU,
    )
    assert no_headers == without


# SECURITY.md row 4: a GPU node without a GPU is refused unless CPU mode is chosen or the host
# is not in gpu_nodes; a GPU found or nvidia_driver_force installs.
@pytest.mark.parametrize(
    ("gpus", "force", "cpu", "groups", "decision"),
    [
        ([], False, False, {"gpu_nodes": ["node1"]}, "refuse"),
        ([], False, True, {"gpu_nodes": ["node1"]}, "skip"),
        ([], False, False, {"gpu_nodes": ["other"]}, "skip"),
        ([], False, False, {}, "skip"),
        ([], True, False, {"gpu_nodes": ["node1"]}, "install"),
        (["0000:01:00.0"], False, False, {"gpu_nodes": ["node1"]}, "install"),
        (["0000:01:00.0"], False, True, {"gpu_nodes": ["node1"]}, "install"),
    ],
)
def test_driver_decision_without_a_gpu(gpus, force, cpu, groups, decision):
    extra = {"__nvidia_driver_gpus": gpus, "nvidia_driver_force": force, "llm_cpu_inference": cpu, "groups": groups}
    assert render("nvidia_driver", "debian12", "_nvidia_driver_decision", **extra) == decision
    assert render("nvidia_driver", "debian12", "_nvidia_driver_install", **extra) is (decision == "install")


def test_driver_refusal_names_the_host_and_the_variable():
    tasks = LOADER.load_from_file(str(ROLES / "nvidia_driver" / "tasks" / "preflight.yml"))
    refusal = next(t for t in tasks if t.get("ansible.builtin.assert", {}).get("that") == "_nvidia_driver_decision != 'refuse'")
    templar = Templar(loader=LOADER, variables=_variables("nvidia_driver", "debian12", inventory_hostname="gpu-box-7", **NO_GPU))
    message = templar.template(trust_as_template(refusal["ansible.builtin.assert"]["fail_msg"]))
    assert message.startswith("gpu-box-7 is in the group gpu_nodes but no NVIDIA GPU was found")
    for needle in ("llm_cpu_inference: true", "remove it from gpu_nodes", "nvidia_driver_force: true", "0x10de"):
        assert needle in message
    # before the first task that changes the host: the preflight is the role's first step and the
    # refusal follows the detection directly
    main = LOADER.load_from_file(str(ROLES / "nvidia_driver" / "tasks" / "main.yml"))
    assert main[0]["ansible.builtin.import_tasks"] == "preflight.yml"
    names = [t["name"] for t in tasks]
    assert names.index(refusal["name"]) == names.index("Detect NVIDIA GPUs") + 1


@pytest.mark.parametrize(
    ("policy", "version", "installed"),
    [
        (
            "nvidia-headless-570-server:\n  Installed: (none)\n  Candidate: 570.172.08-0ubuntu0.24.04.1\n",
            "570.172.08",
            "(none)",
        ),
        (
            "nvidia-kernel-dkms:\n  Installed: 535.261.03-1\n  Candidate: 535.261.03-1\n",
            "535.261.03",
            "535.261.03-1",
        ),
        ("x:\n  Installed: (none)\n  Candidate: 1:550.163.01-2\n", "550.163.01", "(none)"),
    ],
)
def test_driver_version_from_apt_policy(policy, version, installed):
    policy_result = {"__nvidia_driver_policy": {"stdout": policy}}
    assert (
        render("nvidia_driver", "ubuntu2404", "_nvidia_driver_version", **NO_GPU, **policy_result) == version
    )
    assert (
        render("nvidia_driver", "ubuntu2404", "_nvidia_driver_installed", **NO_GPU, **policy_result)
        == installed
    )


@pytest.mark.parametrize(
    ("efi", "mokutil", "efivar", "state"),
    [
        (False, None, None, "not-efi"),
        (True, "SecureBoot enabled\n", None, "enabled"),
        (True, "SecureBoot disabled\n", None, "disabled"),
        (True, None, "   1\n", "enabled"),
        (True, None, "   0\n", "disabled"),
    ],
)
def test_secure_boot_state(efi, mokutil, efivar, state):
    extra = {"__nvidia_driver_efi": {"stat": {"exists": efi}}}
    if mokutil is not None:
        extra["__nvidia_driver_mokutil"] = {"stdout": mokutil}
    if efivar is not None:
        extra["__nvidia_driver_efivar"] = {"stdout": efivar}
    assert render("nvidia_driver", "ubuntu2204", "_nvidia_driver_secure_boot", **NO_GPU, **extra) == state


# --- docker -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "packages"),
    [
        ("debian12", ["docker.io"]),
        ("debian13", ["docker.io", "docker-cli"]),
        ("ubuntu2204", ["docker.io"]),
        ("ubuntu2404", ["docker.io"]),
    ],
)
def test_docker_distribution_packages(host, packages):
    assert render("docker", host, "_docker_packages") == packages


@pytest.mark.parametrize("host", ["debian12", "ubuntu2404"])
def test_docker_ce_packages_are_pinned(host):
    packages = render("docker", host, "_docker_packages", docker_source="docker-ce")
    assert "docker-ce=5:29.2.1-1~*" in packages
    assert "docker-ce-cli=5:29.2.1-1~*" in packages
    assert "containerd.io" in packages


@pytest.mark.parametrize(
    ("repo", "host", "arch", "uri", "suites"),
    [
        ("docker_ce_apt", "ubuntu2404", "x86_64", "https://download.docker.com/linux/ubuntu", ["noble"]),
        ("docker_ce_apt", "debian13", "x86_64", "https://download.docker.com/linux/debian", ["trixie"]),
        (
            "nvidia_container_toolkit_apt",
            "ubuntu2204",
            "x86_64",
            "https://nvidia.github.io/libnvidia-container/stable/deb/amd64",
            ["/"],
        ),
        (
            "nvidia_container_toolkit_apt",
            "debian12",
            "aarch64",
            "https://nvidia.github.io/libnvidia-container/stable/deb/arm64",
            ["/"],
        ),
        (
            "cuda_apt",
            "ubuntu2404",
            "x86_64",
            "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64",
            ["/"],
        ),
        (
            "cuda_apt",
            "ubuntu2204",
            "aarch64",
            "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2204/sbsa",
            ["/"],
        ),
        (
            "cuda_apt",
            "debian12",
            "x86_64",
            "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64",
            ["/"],
        ),
    ],
)
def test_apt_repository_upstream(repo, host, arch, uri, suites):
    assert render("_common", host, "_common_apt_uri", arch, _common_apt_repository=repo) == uri
    assert render("_common", host, "_common_apt_suites", arch, _common_apt_repository=repo) == suites


def test_apt_repository_from_the_mirror():
    mirror = {"llm_artifact_source": "mirror", "llm_mirror_url": "https://mirror.lab.internal/teamllm/"}
    assert render(
        "_common", "ubuntu2404", "_common_apt_uri", _common_apt_repository="docker_ce_apt", **mirror
    ) == ("https://mirror.lab.internal/teamllm/apt/docker-ce/ubuntu")
    assert render("_common", "debian12", "_common_apt_uri", _common_apt_repository="cuda_apt", **mirror) == (
        "https://mirror.lab.internal/teamllm/apt/cuda/debian12/x86_64"
    )


def test_daemon_config_without_and_with_the_nvidia_runtime():
    absent = {"__docker_nvidia_runtime_bin": {"stat": {"exists": False}}}
    present = {"__docker_nvidia_runtime_bin": {"stat": {"exists": True}}}
    plain = render("docker", "ubuntu2404", "_docker_daemon_config", **absent)
    assert plain == {
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "3"},
        "live-restore": True,
        "data-root": "/var/lib/docker",
    }
    nvidia = render("docker", "ubuntu2404", "_docker_daemon_config", **present)
    assert nvidia["runtimes"] == {"nvidia": {"path": "nvidia-container-runtime", "args": []}}
    assert "default-runtime" not in nvidia
    default = render(
        "docker", "ubuntu2404", "_docker_daemon_config", docker_nvidia_runtime_default=True, **present
    )
    assert default["default-runtime"] == "nvidia"
    off = render("docker", "ubuntu2404", "_docker_daemon_config", docker_nvidia_runtime=False, **present)
    assert "runtimes" not in off


@pytest.mark.parametrize(
    ("version", "validate"),
    [
        ("Docker version 20.10.24+dfsg1, build 297e128", ""),
        ("Docker version 26.1.5+dfsg1, build a72d7cd", "dockerd --validate --config-file %s"),
        ("", ""),
    ],
)
def test_daemon_json_validation_where_dockerd_has_it(version, validate):
    assert (
        render("docker", "debian13", "_docker_validate", __docker_dockerd_version={"stdout": version})
        == validate
    )


# --- nvidia_container_toolkit ------------------------------------------------------------------
def test_toolkit_packages_are_pinned():
    assert render("nvidia_container_toolkit", "ubuntu2404", "_nvidia_container_toolkit_pinned") == [
        "nvidia-container-toolkit=1.17.8-1",
        "nvidia-container-toolkit-base=1.17.8-1",
        "libnvidia-container-tools=1.17.8-1",
        "libnvidia-container1=1.17.8-1",
    ]


@pytest.mark.parametrize(
    ("gpus", "force", "install"), [([], False, False), ([], True, True), (["0000:01:00.0"], False, True)]
)
def test_toolkit_only_where_a_gpu_is(gpus, force, install):
    assert (
        render(
            "nvidia_container_toolkit",
            "ubuntu2204",
            "_nvidia_container_toolkit_install",
            __nvidia_driver_gpus=gpus,
            nvidia_container_toolkit_force=force,
        )
        is install
    )


# --- every role: argument specs document exactly the defaults ---------------------------------
@pytest.mark.parametrize("role", ["nvidia_driver", "cuda", "docker", "nvidia_container_toolkit"])
def test_argument_specs_match_defaults(role):
    defaults = _load(ROLES / role / "defaults" / "main.yml")
    specs = _load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(specs) == set(defaults)
    assert all(name.startswith(role + "_") for name in defaults)
