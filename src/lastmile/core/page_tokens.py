"""Opaque keyset page tokens, signed (``core.signed_tokens``, purpose ``page_token``).

Listing endpoints put the last row's sort key in the token; a token this server
did not issue (forged, altered, truncated, or signed under another key) is
refused with 422 ``invalid_page_token`` before its body is read. Callers check
the fields they expect (and raise the same error when they are off).
"""

from __future__ import annotations

from typing import Any

from lastmile.core.errors import InvalidInput
from lastmile.core.signed_tokens import open_fields, sign_fields

PURPOSE = "page_token"


def invalid_token() -> InvalidInput:
    return InvalidInput("invalid_page_token", "page_token is not one this API issued",
                        field="page_token")


def encode_token(fields: dict[str, Any], *, key: bytes) -> str:
    return sign_fields(fields, key=key, purpose=PURPOSE)


def decode_token(token: str, *, key: bytes) -> dict[str, Any]:
    fields = open_fields(token, key=key, purpose=PURPOSE)
    if fields is None:
        raise invalid_token()
    return fields
