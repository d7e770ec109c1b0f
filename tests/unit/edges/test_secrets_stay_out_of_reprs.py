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


def test_api_keys_do_not_come_from_the_seeded_rng(sqlite_platform) -> None:  # type: ignore[no-untyped-def]
    """The simulator and the demo seed ``services.rng`` (same seed, same run); a key drawn
    from it could be recomputed by anyone who knows the seed."""
    import random
    from dataclasses import replace

    from lastmile.app.auth import issue_api_key

    svc = sqlite_platform.services
    first = issue_api_key(replace(svc, rng=random.Random(1)), role="ops", subject_id="ops")[1]
    second = issue_api_key(replace(svc, rng=random.Random(1)), role="ops", subject_id="ops")[1]
    assert first != second and first.startswith("lm_ops_") and len(first) == len(second) == 55
