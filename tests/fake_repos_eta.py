"""The ETA history in memory (``lastmile.app.ports_eta.EtaHistoryRepo``), following
``adapters/db/repositories_eta.py``: open records, finished once, read by placement time."""

from __future__ import annotations

from dataclasses import replace

from fake_repos import Table
from lastmile.core.eta.features import EtaFeatures, EtaOutcome
from lastmile.core.eta.history import Finish, HistoryRecord, MinuteCount


class MemEtaHistory:
    def __init__(self, records: Table[str, HistoryRecord],
                 minutes: Table[tuple[str, int], MinuteCount]):
        self.t, self.minutes = records, minutes

    def supply_minutes(self, region_id: str, *, since_minute: int) -> list[MinuteCount]:
        return [m for (region, minute), m in self.minutes.items()
                if region == region_id and minute >= since_minute]

    def count_order(self, region_id: str, *, minute: int, idle_couriers: int) -> None:
        had = self.minutes.get((region_id, minute)) or MinuteCount(
            minute=minute, orders=0, idle_sum=0.0, idle_samples=0)
        self.minutes.put((region_id, minute), had._replace(
            orders=had.orders + 1, idle_sum=had.idle_sum + idle_couriers,
            idle_samples=had.idle_samples + 1))

    def prep_samples(self, merchant_id: str, *, limit: int) -> list[float]:
        done = sorted((r for r in self.t.rows() if r.features.merchant_id == merchant_id
                       and r.finish is not None and r.finish.prep_s is not None),
                      key=lambda r: r.finish.finished_at if r.finish else 0.0, reverse=True)
        return [r.finish.prep_s for r in done[:limit]
                if r.finish is not None and r.finish.prep_s is not None]

    def add(self, record: HistoryRecord) -> None:
        self.t.put(record.order_id, record)

    def finish(self, order_id: str, finish: Finish) -> bool:
        record = self.t.get(order_id)
        if record is None or record.finish is not None:
            return False
        self.t.put(order_id, replace(record, finish=finish))
        return True

    def records(self, *, since: float | None = None, until: float | None = None,
                finished_only: bool = True) -> list[HistoryRecord]:
        rows = [r for r in self.t.rows()
                if (since is None or r.placed_at >= since)
                and (until is None or r.placed_at < until)
                and (r.finish is not None or not finished_only)]
        return sorted(rows, key=lambda r: (r.placed_at, r.order_id))

    def training_set(self, *, since: float | None = None, until: float | None = None
                     ) -> tuple[list[EtaFeatures], list[EtaOutcome]]:
        done = [r for r in self.records(since=since, until=until)
                if r.finish is not None and r.finish.outcome is not None]
        return ([r.features for r in done],
                [r.finish.outcome for r in done if r.finish and r.finish.outcome])
