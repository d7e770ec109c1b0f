"""Page tokens carry an HMAC under the server's key: only tokens this server issued decode."""

from __future__ import annotations

import base64
import json

import pytest

from lastmile.core.errors import InvalidInput
from lastmile.core.page_tokens import decode_token, encode_token

KEY = b"k" * 32


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_token_decodes_under_the_key_that_signed_it() -> None:
    assert decode_token(encode_token({"c": 1.5, "id": "d_1"}, key=KEY), key=KEY) == {
        "c": 1.5, "id": "d_1"}


@pytest.mark.parametrize("forge", [
    lambda t: b64(b'{"c":0,"id":"x"}'),  # the old, unsigned format
    lambda t: b64(b'{"c":0,"id":"x"}') + "." + t.split(".")[1],  # another body, a real MAC
    lambda t: t[:-2],  # truncated MAC
    lambda t: t.split(".")[0] + ".",  # no MAC
    lambda t: t + "\u00e9",  # non-ASCII must not raise TypeError
    lambda t: encode_token({"c": 9.0, "id": "d_1"}, key=b"x" * 32),  # another server's key
])
def test_a_forged_or_altered_token_is_invalid_page_token(forge) -> None:  # type: ignore[no-untyped-def]
    token = encode_token({"c": 1.5, "id": "d_1"}, key=KEY)
    with pytest.raises(InvalidInput) as err:
        decode_token(forge(token), key=KEY)
    assert (err.value.code, err.value.field) == ("invalid_page_token", "page_token")


def test_the_body_is_json_under_base64_so_nothing_secret_belongs_in_it() -> None:
    body = encode_token({"id": "d_1"}, key=KEY).split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(body + "==")) == {"id": "d_1"}
