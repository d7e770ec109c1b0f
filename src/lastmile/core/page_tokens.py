"""Opaque keyset page tokens: a small JSON object, URL-safe base64 without padding.

Listing endpoints put the last row's sort key in the token; a token that does not
decode to a JSON object is refused with 422 ``invalid_page_token``. Callers check
the fields they expect (and raise the same error when they are off).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lastmile.core.errors import InvalidInput


def invalid_token() -> InvalidInput:
    return InvalidInput("invalid_page_token", "page_token is not one this API issued",
                        field="page_token")


def encode_token(fields: dict[str, Any]) -> str:
    body = json.dumps(fields, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as exc:  # bad base64, bad UTF-8, bad JSON
        raise invalid_token() from exc
    if not isinstance(raw, dict):
        raise invalid_token()
    return raw
