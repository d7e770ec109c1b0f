"""Training and evaluation rows as columns: the numeric feature matrix (``NUMERIC_COLUMNS``),
who and where each row is, and the realised click-to-door duration.

Every model of ``core.eta`` trains on and predicts from ``EtaTable.matrix``; a history
export, an MDRP replay or a simulated day all become one of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lastmile.core.eta.features import NUMERIC_COLUMNS, EtaFeatures, EtaOutcome, numeric_matrix

STAGES = ("assign_s", "to_merchant_s", "wait_s", "to_consumer_s")
"""``EtaOutcome``'s stages, in order (``EtaTable.stages``' columns)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EtaTable:
    matrix: np.ndarray
    """float64, one row per delivery, ``NUMERIC_COLUMNS``."""
    merchant: np.ndarray
    """The merchant id of each row (str)."""
    source: np.ndarray
    """Where each row comes from (str): an MDRP instance name, a simulated day."""
    total_s: np.ndarray
    """Realised placement -> delivered, seconds."""
    stages: np.ndarray | None = None
    """``(n, 4)`` realised ``STAGES`` in seconds (they sum to the total before any jitter of
    ``total_s``); None when the source does not have them."""

    def __post_init__(self) -> None:
        n = len(self.total_s)
        if self.stages is not None and self.stages.shape != (n, len(STAGES)):
            raise ValueError(f"stages must be ({n}, {len(STAGES)}) (got {self.stages.shape})")
        if self.matrix.shape != (n, len(NUMERIC_COLUMNS)):
            raise ValueError(f"matrix must be ({n}, {len(NUMERIC_COLUMNS)}) "
                             f"(got {self.matrix.shape})")
        if len(self.merchant) != n or len(self.source) != n:
            raise ValueError("merchant and source need one entry per row")

    def __len__(self) -> int:
        return len(self.total_s)

    def take(self, mask: np.ndarray) -> EtaTable:
        """The rows where ``mask`` (bool or indices) selects."""
        return EtaTable(matrix=self.matrix[mask], merchant=self.merchant[mask],
                        source=self.source[mask], total_s=self.total_s[mask],
                        stages=None if self.stages is None else self.stages[mask])


def table_from_rows(features: Sequence[EtaFeatures], outcomes: Sequence[EtaOutcome],
                    *, source: str) -> EtaTable:
    """Rows of one source (delivered orders only: each feature row has its outcome)."""
    if len(features) != len(outcomes):
        raise ValueError(f"need one outcome per feature row (got {len(features)} and "
                         f"{len(outcomes)})")
    return EtaTable(matrix=numeric_matrix(list(features)),
                    merchant=np.array([f.merchant_id for f in features], dtype=str),
                    source=np.full(len(features), source, dtype=object).astype(str),
                    total_s=np.array([o.total_s for o in outcomes], dtype=np.float64),
                    stages=np.array([[getattr(o, k) for k in STAGES] for o in outcomes],
                                    dtype=np.float64).reshape(len(outcomes), len(STAGES)))


def concat(tables: Sequence[EtaTable]) -> EtaTable:
    """One table of all rows, in order; an empty sequence gives an empty table."""
    if not tables:
        return EtaTable(matrix=np.empty((0, len(NUMERIC_COLUMNS))), merchant=np.array([], str),
                        source=np.array([], str), total_s=np.empty(0))
    return EtaTable(matrix=np.concatenate([t.matrix for t in tables]),
                    merchant=np.concatenate([t.merchant for t in tables]),
                    source=np.concatenate([t.source for t in tables]),
                    total_s=np.concatenate([t.total_s for t in tables]),
                    stages=(np.concatenate([t.stages for t in tables if t.stages is not None])
                            if all(t.stages is not None for t in tables) else None))


def column(name: str) -> int:
    """The index of ``name`` in ``NUMERIC_COLUMNS`` (KeyError-like ValueError otherwise)."""
    try:
        return NUMERIC_COLUMNS.index(name)
    except ValueError:
        raise ValueError(f"no feature column {name!r}; expected one of NUMERIC_COLUMNS") from None
