"""The ETA history's port (``app.eta_history``); ``adapters.db.repositories_eta`` and
``tests.fake_repos_eta`` implement it."""

from __future__ import annotations

from typing import Protocol

from lastmile.core.eta.features import EtaFeatures, EtaOutcome
from lastmile.core.eta.history import Finish, HistoryRecord, MinuteCount


class EtaHistoryRepo(Protocol):
    def supply_minutes(self, region_id: str, *, since_minute: int) -> list[MinuteCount]:
        """The region's counters of minutes ``>= since_minute``."""
        ...
    def count_order(self, region_id: str, *, minute: int, idle_couriers: int) -> None:
        """One more order placed in ``minute``, with the idle couriers seen then (one
        upsert: the row is created or its counters added to)."""
        ...
    def prep_samples(self, merchant_id: str, *, limit: int) -> list[float]:
        """The preparation times (s) of the merchant's last ``limit`` finished orders
        whose food was ready, newest first."""
        ...
    def add(self, record: HistoryRecord) -> None:
        """Store an order's features as placed (its ``finish`` None: open)."""
        ...
    def finish(self, order_id: str, finish: Finish) -> bool:
        """Complete the open record of ``order_id``; False when there is none (an order
        placed before the history, or finished already)."""
        ...
    def records(self, *, since: float | None = None, until: float | None = None,
                finished_only: bool = True) -> list[HistoryRecord]:
        """Records of orders placed in ``[since, until)`` (None: unbounded), by placement
        time then order id; only finished ones unless ``finished_only`` is False."""
        ...
    def training_set(self, *, since: float | None = None, until: float | None = None
                     ) -> tuple[list[EtaFeatures], list[EtaOutcome]]:
        """The delivered orders placed in ``[since, until)`` with every stage known, as
        aligned lists of features and outcomes (the models' training input)."""
        ...
