"""ETA models as versioned folders: ``model.json`` (format, version, features, training data,
offsets, tolerance) beside one LightGBM text file per booster (``booster_p10.txt``...).

Writes go to a temporary folder renamed into place, so a reader never sees half a model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from lastmile.core.errors import InvalidInput
from lastmile.core.eta.quantile_gbm import BOOSTER_NAMES, TwoStageEta, from_parts, to_parts

META_FILE = "model.json"


def save_model(model: TwoStageEta, folder: Path) -> Path:
    """Write ``model`` to ``folder`` (replaced if it exists); returns the folder."""
    folder = Path(folder)
    meta, texts = to_parts(model)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
    for name, text in texts.items():
        (tmp / f"booster_{name}.txt").write_text(text)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def load_model(folder: Path) -> TwoStageEta:
    """Read a model folder; InvalidInput (field ``model``) when it is missing or malformed."""
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise InvalidInput("model_not_found", f"no {META_FILE} in {folder} (expected a folder "
                           "written by `lastmile eta train`)", field="model")
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        texts = {n: (folder / f"booster_{n}.txt").read_text() for n in BOOSTER_NAMES
                 if (folder / f"booster_{n}.txt").is_file()}
        return from_parts(meta, texts)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("invalid_model", f"model {folder} is unreadable: {exc}",
                           field="model") from exc
