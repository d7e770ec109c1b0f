"""ETA training tables cached as ``.npz`` files outside the repository (an MDRP replay or a
simulated day is costly to recompute; its table is deterministic per arguments)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from lastmile.core.eta.table import EtaTable


def cached_table(path: Path | None, build: Callable[[], EtaTable]) -> EtaTable:
    """The table stored at ``path``, else ``build()``'s, stored there (written to a temporary
    file and renamed, so a reader never sees half a file). ``path`` None: no cache."""
    if path is None:
        return build()
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return EtaTable(matrix=z["matrix"], merchant=z["merchant"], source=z["source"],
                            total_s=z["total_s"])
    table = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, matrix=table.matrix, merchant=table.merchant, source=table.source,
             total_s=table.total_s)
    tmp.replace(path)
    return table
