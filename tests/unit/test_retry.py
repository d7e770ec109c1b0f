"""app.retry: a use case that lost a race is re-run, boundedly, then the 409 goes out."""

from __future__ import annotations

import random

import pytest

from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.app import retry
from lastmile.app.context import Services
from lastmile.core.errors import Conflict


def _services() -> Services:
    def no_uow(*, read_only: bool = False):  # the use cases below open none
        raise AssertionError("not used")

    return Services(uow=no_uow, clock=ManualClock(), ids=SequentialIds(), rng=random.Random(1))


def _losing(times: int, calls: list[int]):
    @retry.retrying
    def use_case(services: Services, value: str) -> str:
        calls.append(1)
        if len(calls) <= times:
            raise Conflict("concurrent_update", "lost", current_state="busy")
        return value

    return use_case


def test_a_use_case_that_lost_a_race_is_run_again_on_fresh_state(monkeypatch):
    monkeypatch.setattr(retry.time, "sleep", lambda s: None)
    calls: list[int] = []
    assert _losing(3, calls)(_services(), "done") == "done"
    assert len(calls) == 4


def test_after_the_last_attempt_the_conflict_goes_out_with_the_current_state(monkeypatch):
    monkeypatch.setattr(retry.time, "sleep", lambda s: None)
    calls: list[int] = []
    with pytest.raises(Conflict) as err:
        _losing(100, calls)(_services(), "done")
    assert len(calls) == retry.MAX_ATTEMPTS
    assert err.value.code == "concurrent_update"
    assert err.value.extra["current_state"] == "busy"


def test_other_conflicts_are_the_answer_and_are_not_retried():
    calls: list[int] = []

    @retry.retrying
    def use_case(services: Services) -> None:
        calls.append(1)
        raise Conflict("order_not_dispatchable", "cancelled")

    with pytest.raises(Conflict):
        use_case(_services())
    assert calls == [1]


def test_the_backoff_is_jittered_from_the_injected_generator_and_capped():
    first, again = _services(), _services()
    a = [retry.backoff_s(first, n) for n in range(1, 12)]
    b = [retry.backoff_s(again, n) for n in range(1, 12)]
    assert a == b  # same seed, same waits: seeded runs stay reproducible
    assert all(0 <= s < min(retry.MAX_DELAY_S, retry.BASE_DELAY_S * 2 ** n)
               for n, s in enumerate(a, start=1))
    assert len(set(a)) == len(a)  # drawn, not a fixed ladder two losers would climb together
