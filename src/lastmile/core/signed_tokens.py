"""Small signed tokens: a JSON object and its HMAC-SHA256, URL-safe base64 without padding.

``<body>.<mac>``: ``mac`` signs ``purpose`` and the encoded body under a server
key passed in (core reads no settings), so a token issued for one purpose (a
page token) is never accepted for another (a stream token). The body is only
encoded, not encrypted: nothing secret belongs in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _mac(key: bytes, purpose: str, body: str) -> str:
    return _b64(hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest())


def sign_fields(fields: dict[str, Any], *, key: bytes, purpose: str) -> str:
    body = _b64(json.dumps(fields, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(key, purpose, body)}"


def open_fields(token: str, *, key: bytes, purpose: str) -> dict[str, Any] | None:
    """The fields when ``token`` was signed under ``key`` for ``purpose``; else None."""
    body, _, mac = token.partition(".")
    expected = _mac(key, purpose, body).encode()
    # compare_digest on bytes: on str it raises TypeError for non-ASCII input.
    if not mac or not hmac.compare_digest(expected, mac.encode("utf-8", "surrogateescape")):
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error):  # cannot happen for a body we signed; be total anyway
        return None
    return raw if isinstance(raw, dict) else None
