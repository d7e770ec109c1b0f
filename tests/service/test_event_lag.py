"""The lag /metrics reports per durable consumer, read from the relay's tables (SQLite and
PostgreSQL): counts of the backlog and the age of its oldest due event on the platform
clock."""

from lastmile.adapters.bus.memory import InProcessBus
from lastmile.adapters.bus.outbox import Relay, RelayPolicy
from lastmile.adapters.db.lag import consumer_lag, outbox_lag
from lastmile.app.context import new_event, record
from lastmile.core.webhooks import RetryPolicy

POLICY = RelayPolicy(retry=RetryPolicy(base_s=10.0, cap_s=10.0, max_attempts=5))


def _record(p, subjects):
    with p.services.uow() as uow:
        for subject in subjects:
            record(uow, p.services, new_event(
                p.services, type="test.happened", region_id="reg_t", subject_id=subject,
                actor_kind="system", actor_id="system"))
        uow.commit()


def _lag(p):
    with p.container.engine.connect() as conn:
        now = p.clock.now()
        return {lag.consumer: lag for lag in consumer_lag(conn, now)}, outbox_lag(conn, now)


def test_lag_counts_the_backlog_and_ages_its_oldest_due_event(platform):
    p = platform
    Relay(p.services, InProcessBus()).drain()  # the seed's events: no durable subscriber yet
    failing = {"a"}

    def handler(event):
        if event.subject_id in failing:
            raise RuntimeError("receiver down")

    bus = InProcessBus()
    bus.subscribe("*", handler, durable="lag-test")
    bus.subscribe("other.type", lambda e: None, durable="lag-idle")
    relay = Relay(p.services, bus, policy=POLICY)
    relay.run_once()  # registers both: they owe nothing yet
    lags, outbox = _lag(p)
    assert (lags["lag-test"].pending, lags["lag-test"].oldest_due_age_s) == (0, 0.0)
    assert (outbox.unsent, outbox.oldest_unsent_age_s) == (0, 0.0)

    _record(p, ["a", "b"])
    p.clock.advance(3)
    _record(p, ["c"])
    p.clock.advance(2)
    lags, outbox = _lag(p)
    assert (outbox.unsent, outbox.oldest_unsent_age_s) == (3, 5.0)
    assert lags["lag-test"].pending == 0  # not fanned out yet

    assert relay.fan_out() == 3
    p.clock.advance(1)
    lags, outbox = _lag(p)
    assert outbox.unsent == 0
    lag = lags["lag-test"]
    assert (lag.pending, lag.due, lag.retrying, lag.oldest_due_age_s) == (3, 3, 0, 6.0)
    assert (lags["lag-idle"].pending, lags["lag-idle"].oldest_due_age_s) == (0, 0.0)

    relay.deliver("lag-test")  # b and c delivered; a fails and waits 10 s
    lag = _lag(p)[0]["lag-test"]
    assert (lag.pending, lag.due, lag.retrying, lag.oldest_due_age_s) == (1, 0, 1, 0.0)

    p.clock.advance(10)  # a is due again: its age counts from when it was recorded
    lag = _lag(p)[0]["lag-test"]
    assert (lag.pending, lag.due, lag.retrying, lag.oldest_due_age_s) == (1, 1, 1, 16.0)

    failing.clear()
    relay.drain()
    lag = _lag(p)[0]["lag-test"]
    assert (lag.pending, lag.due, lag.retrying, lag.oldest_due_age_s) == (0, 0, 0, 0.0)
