"""Opaque keyset page tokens: a small JSON object and its HMAC, URL-safe base64 without padding.

``<body>.<mac>`` where ``body`` is the JSON object and ``mac`` is HMAC-SHA256 of
the encoded body under a server key (passed in: core reads no settings). Listing
endpoints put the last row's sort key in the token; a token this server did not
issue (forged, altered, truncated, or signed under another key) is refused with
422 ``invalid_page_token`` before its body is read. Callers check the fields they
expect (and raise the same error when they are off).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from lastmile.core.errors import InvalidInput


def invalid_token() -> InvalidInput:
    return InvalidInput("invalid_page_token", "page_token is not one this API issued",
                        field="page_token")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, b"page_token." + body.encode(), hashlib.sha256).digest())


def encode_token(fields: dict[str, Any], *, key: bytes) -> str:
    body = _b64(json.dumps(fields, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(key, body)}"


def decode_token(token: str, *, key: bytes) -> dict[str, Any]:
    body, _, mac = token.partition(".")
    # compare_digest on bytes: on str it raises TypeError for non-ASCII input.
    expected = _mac(key, body).encode()
    if not mac or not hmac.compare_digest(expected, mac.encode("utf-8", "surrogateescape")):
        raise invalid_token()
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error) as exc:  # bad base64, bad UTF-8, bad JSON
        raise invalid_token() from exc
    if not isinstance(raw, dict):
        raise invalid_token()
    return raw
