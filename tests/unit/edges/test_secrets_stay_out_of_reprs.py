"""Secrets (webhook signing secrets, key hashes, PINs, tracking capabilities) never reach a repr,
and so never a log line or a traceback that formats the value."""

from __future__ import annotations

import logging

import pytest

from fakes import an_order
from lastmile.app.ports import ApiKeyRecord
from lastmile.core.webhooks import Endpoint


def test_a_webhook_endpoint_repr_hides_its_signing_secret(caplog: pytest.LogCaptureFixture) -> None:
    e = Endpoint(id="whk_1", merchant_id="m_1", url="https://x.test/h", secret="whsec_TOPSECRET",
                 event_types=(), created_at=0.0)
    assert "TOPSECRET" not in repr(e) and "https://x.test/h" in repr(e)
    with caplog.at_level(logging.INFO):
        logging.getLogger("lastmile.test").info("endpoint %r, %s", e, e)
    assert "TOPSECRET" not in caplog.text


def test_an_api_key_record_repr_hides_the_key_hash() -> None:
    r = ApiKeyRecord(key_id="key_1", key_hash="f00dfeed" * 8, role="ops", subject_id="ops",
                     created_at=0.0)
    assert "f00dfeed" not in repr(r)


def test_an_order_repr_hides_the_dropoff_pin() -> None:
    order = an_order(dropoff_pin="8642")
    assert "8642" not in repr(order) and order.dropoff_pin == "8642"
