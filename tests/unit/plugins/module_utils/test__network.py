import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _network


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
    ("10.0.0.5", False), ("0.0.0.0", False), ("fd00::1", False), ("node1", False), ("", False),
])
def test_is_loopback(address, expected):
    assert _network.is_loopback(address) is expected


def test_allow_sets_split_sort_and_dedupe():
    assert _network.allow_sets(["10.0.0.9", "10.0.0.5/32", "fd00::1", "10.0.1.7/24", "10.0.0.9"]) == {
        "ipv4": ["10.0.0.5", "10.0.0.9", "10.0.1.0/24"],
        "ipv6": ["fd00::1"],
    }


def test_allow_sets_name_host_variable_and_bad_entries():
    with pytest.raises(_network.AddressError, match=r"node1: llm_engine_allow_from holds "
                                                    r"'gw\.lan', '10\.0\.0\.300'"):
        _network.allow_sets(["gw.lan", "10.0.0.300", "10.0.0.1"], host="node1")


def test_allow_sets_refuse_an_empty_list():
    with pytest.raises(_network.AddressError, match="is empty, so no gateway could reach"):
        _network.allow_sets([], host="node1")


def test_allow_sets_accept_an_empty_list_when_asked():
    # an exporter's table admits only the monitoring hosts: its gateway set is empty
    assert _network.allow_sets([], allow_empty=True) == {"ipv4": [], "ipv6": []}
