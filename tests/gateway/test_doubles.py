"""Unit tests of the gateway's test doubles (run: pytest -q tests/gateway)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import webui_double  # noqa: E402


def test_accept_key_matches_rfc6455_example():
    # RFC 6455, section 1.3
    assert webui_double.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_masked_frame_round_trip():
    for size in (0, 5, 125, 126, 70000):
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        data = webui_double.frame(0x1, payload, mask=b"\x01\x02\x03\x04")
        assert data[1] & 0x80
        assert webui_double.read_frame(io.BytesIO(data)) == (0x1, payload)


def test_server_frame_is_unmasked():
    data = webui_double.frame(0x1, b"echo:x")
    assert data == b"\x81\x06echo:x"
    assert webui_double.read_frame(io.BytesIO(data)) == (0x1, b"echo:x")


def test_end_of_stream():
    assert webui_double.read_frame(io.BytesIO(b"")) == (None, b"")
