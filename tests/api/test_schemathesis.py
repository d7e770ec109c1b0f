"""Property-based fuzzing of the app's own OpenAPI: no input may produce a 5xx.

Each operation gets a bounded number of generated requests, authenticated
with the key of the side its path belongs to.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.api.app import create_app
from lastmile.app.auth import issue_api_key
from lastmile.bootstrap import build
from lastmile.settings import Settings
from lastmile.sim.seed import seed_demo


def _app_and_keys(tmp_dir):
    container = build(Settings(data_dir=tmp_dir), clock=ManualClock(), ids=SequentialIds(),
                      rng=random.Random(1))
    s = seed_demo(container.services, seed=2, merchants=3, consumers=2, couriers=2)
    svc = container.services
    keys = {
        "consumer": issue_api_key(svc, role="consumer", subject_id=s.consumer_ids[0])[1],
        "merchant": issue_api_key(svc, role="merchant", subject_id=s.merchant_ids[0])[1],
        "courier": issue_api_key(svc, role="courier", subject_id=s.courier_ids[0])[1],
        "ops": issue_api_key(svc, role="ops", subject_id="ops")[1],
    }
    return create_app(container, start_workers=False), keys


# The pytest plugin of schemathesis 4.32 does not load under pytest 9.2 ('_nodeid'),
# so the operations are parametrized here and each runs its own hypothesis search.
# One app (and database) serves the schema and the calls, so the keys are valid.
APP, KEYS = _app_and_keys(Path(tempfile.mkdtemp(prefix="lastmile-schema-")))
OPERATIONS = [r.ok() for r in schemathesis.openapi.from_asgi("/openapi.json", APP)
              .get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_input_produces_a_server_error(operation):
    keys = KEYS
    side = operation.path.split("/")[2] if operation.path.startswith("/v1/") else "ops"
    headers = {"Authorization": f"Bearer {keys.get(side, keys['ops'])}"}

    @given(case=operation.as_strategy())
    @settings(max_examples=12, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    fuzz()
