"""The validate_inventory action's file work: which files an inventory is read from, and the
duplicate keys found in them (reported by file and line, never with a value)."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.action.validate_inventory import (
    collection_downloads,
    duplicate_key_problems,
    duplicate_keys,
    inventory_files,
)

KEY = "Zq4v8XkP2mW9rT6yB1nC5hJ7dF3gL0sA-_xE"


def test_inventory_files_of_a_directory_a_file_and_the_playbook(tmp_path):
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text("all: {}\n")
    (inv / "group_vars" / "all" / "clients.yml").write_text("a: 1\n")
    (inv / "group_vars" / "gateway").write_text("a: 1\n")
    (inv / "README.md").write_text("#\n")
    single = tmp_path / "single.yml"
    single.write_text("all: {}\n")
    play = tmp_path / "play"
    (play / "host_vars").mkdir(parents=True)
    (play / "host_vars" / "node1.yaml").write_text("a: 1\n")
    files = inventory_files([str(inv), str(single), str(tmp_path / "missing")], str(play))
    names = sorted(f.rsplit("/", 1)[-1] for f in files)
    assert names == ["clients.yml", "gateway", "hosts.yml", "node1.yaml", "single.yml"]


def test_duplicate_keys_name_file_and_line_never_the_value(tmp_path):
    clients = tmp_path / "clients.yml"
    clients.write_text(f"llm_api_clients:\n  - name: alice\n    key: {KEY}\n    key: {KEY[::-1]}\n")
    vaulted = tmp_path / "vault.yml"
    vaulted.write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    (problem,) = duplicate_key_problems([str(clients), str(vaulted), str(tmp_path / "gone.yml")])
    assert problem == (f"{clients} line 4: the key 'key' is given twice in one mapping (YAML keeps "
                       "only the last one): remove one of them")
    assert KEY not in problem and KEY[::-1] not in problem


def test_collection_downloads_are_read_from_the_role_defaults():
    assert "teamllm_tiny_gguf" in collection_downloads()


def test_duplicate_keys_are_found_without_reading_values():
    text = ("llm_api_clients:\n  - name: alice\n    key: !vault |\n      $ANSIBLE_VAULT;1.1\n"
            "    key: second\nother: {a: 1, a: 2}\n<<: {}\n")
    assert duplicate_keys(text) == [(5, "key"), (6, "a")]
    assert duplicate_keys("[all]\nnode1\n") == [] and duplicate_keys("a: [") == []
