"""Retrying a use case that lost a race: the one place that rule lives.

A write use case loads aggregates, decides, and saves them with a compare-and-set. When
another request saved one of them first, the save raises ``Conflict("concurrent_update")``
and the unit of work rolls back. ``retrying`` re-runs the *whole* use case (a fresh unit of
work, a fresh load, a fresh decision) a bounded number of times with a small jittered
backoff; after the last attempt the 409 goes out, carrying the stored state.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from lastmile.app.context import Services
from lastmile.core.errors import Conflict

P = ParamSpec("P")
T = TypeVar("T")

RETRYABLE = "concurrent_update"
# Eight clients adding items to one merchant non-stop (the measurement; see
# tests/service/test_races.py) lost 10 attempts in a row about once in 100 requests: the
# winner's next request competes again at once. 16 attempts with waits growing to a quarter
# second gave none in repeated runs, until the request path got faster (cached API keys,
# prepared statements: docs/capacity.md) and the same test lost 16 in a row about one run in
# eight on PostgreSQL; 24 gave none in 8 runs. A request that still loses gets its 409
# after ~5 s.
MAX_ATTEMPTS = 24
BASE_DELAY_S = 0.005
MAX_DELAY_S = 0.25


def backoff_s(services: Services, attempt: int) -> float:
    """"Full jitter" (AWS Architecture Blog, 2015): uniform in [0, min(cap, base * 2^n)),
    drawn from the injected generator so seeded runs stay reproducible."""
    return services.rng.uniform(0.0, min(MAX_DELAY_S, BASE_DELAY_S * 2 ** attempt))


def retrying(use_case: Callable[Concatenate[Services, P], T]
             ) -> Callable[Concatenate[Services, P], T]:
    """Re-run ``use_case`` (whose first argument is the Services) while it loses a race.

    Only ``concurrent_update`` is retried: other conflicts are the answer itself (an order
    already cancelled stays cancelled). A use case must own its units of work: nothing it
    did in a failed attempt survives, so re-running it is safe.
    """

    @functools.wraps(use_case)
    def run(services: Services, /, *args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, MAX_ATTEMPTS):
            try:
                return use_case(services, *args, **kwargs)
            except Conflict as exc:
                if exc.code != RETRYABLE:
                    raise
            time.sleep(backoff_s(services, attempt))
        return use_case(services, *args, **kwargs)  # the last attempt's 409 goes out as is

    return run
