"""ETA training tables cached as ``.npz`` files outside the repository (an MDRP replay or a
simulated day is costly to recompute; its table is deterministic per arguments)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from lastmile.core.eta.features import NUMERIC_COLUMNS
from lastmile.core.eta.table import EtaTable


def widened(matrix: np.ndarray) -> np.ndarray:
    """A matrix stored before columns were added at the end of ``NUMERIC_COLUMNS``, with
    those columns unknown (NaN): what its source would give for them (a source that fills a
    new column must bump its own cache version instead)."""
    missing = len(NUMERIC_COLUMNS) - matrix.shape[1]
    if missing < 0:
        raise ValueError(f"cached matrix has {matrix.shape[1]} columns, more than the "
                         f"{len(NUMERIC_COLUMNS)} of NUMERIC_COLUMNS: delete the cache")
    if missing == 0:
        return matrix
    return np.hstack([matrix, np.full((matrix.shape[0], missing), np.nan)])


def cached_table(path: Path | None, build: Callable[[], EtaTable]) -> EtaTable:
    """The table stored at ``path``, else ``build()``'s, stored there (written to a temporary
    file and renamed, so a reader never sees half a file). ``path`` None: no cache."""
    if path is None:
        return build()
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return EtaTable(matrix=widened(z["matrix"]), merchant=z["merchant"],
                            source=z["source"], total_s=z["total_s"],
                            stages=z["stages"] if "stages" in z.files else None)
    table = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    arrays: dict[str, np.ndarray] = {"matrix": table.matrix, "merchant": table.merchant,
                                     "source": table.source, "total_s": table.total_s}
    if table.stages is not None:
        arrays["stages"] = table.stages
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)
    return table
