# Copyright: teamllm.stack contributors
# Apache License 2.0
"""What the offline bundle of an inventory holds (module_utils/_bundle): the llm_downloads
entries its hosts install and the Debian packages its roles install. Each filter is documented
in the .yml file of its name beside this one."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _bundle, _downloads


def _hosts(hostvars, groups):
    keys = _bundle.host_keys()
    found = {}
    for host in groups.get("all") or []:
        hv = hostvars[host]
        found[host] = {k: hv[k] for k in keys if k in hv}
    return found


def bundle_downloads(downloads, hostvars, groups):
    """The llm_downloads entries the inventory's hosts install: a list of the entries, each
    with ``name``, ``hosts`` and ``why`` added, sorted by name."""
    try:
        needed = _bundle.needed_downloads(_hosts(hostvars, groups), dict(groups), dict(downloads))
    except _bundle.BundleError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return [dict(v["entry"], name=k, hosts=v["hosts"], why=v["why"],
                 problem=_bundle.carry_problem(k, v["entry"], v["hosts"])) for k, v in needed.items()]


def bundle_sources(needed, sums_text):
    """The files to copy into the bundle for the entries of bundle_downloads, with their
    sha256 (from the mirror's SHA256SUMS text for entries the mirror builder makes)."""
    try:
        sums = _downloads.parse_sha256sums(sums_text or "")
        return _bundle.bundle_sources({e["name"]: e for e in needed}, sums)
    except (_bundle.BundleError, _downloads.DownloadError) as exc:
        raise AnsibleFilterError(str(exc)) from None


def bundle_apt_packages(mapping, hostvars, groups, release):
    """{debian: [package, ...], repositories: {apt entry: [package, ...]}} the inventory's roles
    install on Debian ``release``, from the role -> packages mapping."""
    debian, repositories = _bundle.inventory_apt_packages(dict(mapping), _hosts(hostvars, groups), dict(groups), release)
    return {"debian": debian, "repositories": repositories}


class FilterModule:
    def filters(self):
        return {"bundle_downloads": bundle_downloads, "bundle_apt_packages": bundle_apt_packages,
                "bundle_sources": bundle_sources}
