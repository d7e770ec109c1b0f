"""ETA model files in a folder: the registry the serving path reads (``app.ports.
EtaModelRegistry``).

Layout::

    DIR/registry.json     {"incumbent": "heuristic-2.json", "shadow": "lgbm-3.txt" | null,
                           "history": [{"incumbent": ..., "promoted_at": ...}, ...]}
    DIR/<model files>     one file per version, never rewritten

A model file is JSON with a ``kind`` naming its loader (``LOADERS``); ``heuristic`` files
hold ``HeuristicParams`` (its measured interval ratios). A model *folder* (``lastmile eta
train``'s LightGBM two-stage model, ``adapters.eta_model_files``) is named by the folder:
its ``model.json`` says its format, ``lastmile-eta-two-stage``, the kind of its loader. No incumbent in the
registry (or no registry file): the pricing policy's heuristic serves. Loaded models are
kept until the registry file is rewritten.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.eta.engine import EtaModel, HeuristicModel, HeuristicParams

REGISTRY = "registry.json"
TWO_STAGE = "lastmile-eta-two-stage"  # core.eta.quantile_gbm.MODEL_FORMAT (not imported:
# LightGBM loads only when a registry names such a model)
META_FILE = "model.json"  # adapters.eta_model_files.META_FILE


def load_heuristic(path: Path, doc: dict[str, Any]) -> EtaModel:
    known = {f.name for f in fields(HeuristicParams)}
    params = {k: v for k, v in dict(doc.get("params", {})).items() if k in known}
    try:
        return HeuristicModel(HeuristicParams(**params))
    except (TypeError, ValueError) as exc:
        raise InvalidInput("invalid_eta_model", f"{path.name}: {exc}", field="params") from exc


def load_two_stage(path: Path, doc: dict[str, Any]) -> EtaModel:
    """A LightGBM two-stage model folder (``path``: the folder)."""
    from lastmile.adapters import eta_model_files

    return eta_model_files.load_model(path)


LOADERS: dict[str, Callable[[Path, dict[str, Any]], EtaModel]] = {
    "heuristic": load_heuristic, TWO_STAGE: load_two_stage}
"""Model kind -> loader of (file or folder path, its JSON document)."""


def load_model(path: Path) -> EtaModel:
    """The model in ``path`` (a file, or a model folder and its ``model.json``);
    InvalidInput naming the file when it is unreadable, not JSON or of a kind no loader
    knows."""
    try:
        doc = json.loads((path / META_FILE if path.is_dir() else path
                          ).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput("invalid_eta_model", f"cannot read ETA model {path}: {exc}",
                           field="model") from exc
    kind = doc.get("kind", doc.get("format")) if isinstance(doc, dict) else None
    loader = LOADERS.get(str(kind))
    if loader is None:
        raise InvalidInput("invalid_eta_model", f"{path.name}: kind must be one of "
                           f"{sorted(LOADERS)} (got {kind!r})", field="kind")
    return loader(path, doc)


class FileModelRegistry:
    """``DIR/registry.json`` and the model files it names (module docstring)."""

    def __init__(self, root: Path, *, now: Callable[[], float] | None = None):
        self.root = root
        self._now = now
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._doc: dict[str, Any] = {}
        self._models: dict[str, EtaModel | None] = {}

    def _state(self) -> dict[str, Any]:
        path = self.root / REGISTRY
        try:
            st = path.stat()
        except FileNotFoundError:
            return {}
        # A rewrite replaces the file (a new inode), so this changes even within one mtime tick.
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._seen:
                self._doc, self._seen, self._models = json.loads(path.read_text()), stamp, {}
            return self._doc

    def _model(self, role: str) -> EtaModel | None:
        name = self._state().get(role)
        if not name:
            return None
        with self._lock:
            if role not in self._models:
                self._models[role] = load_model(self.root / str(name))
            return self._models[role]

    def incumbent(self) -> EtaModel | None:
        return self._model("incumbent")

    def shadow(self) -> EtaModel | None:
        return self._model("shadow")

    def files(self) -> dict[str, Any]:
        """The registry document as it is on disk ({} when there is none)."""
        return dict(self._state())

    def set_shadow(self, name: str | None) -> None:
        """Run ``name`` (a file in the folder, checked by loading it) in shadow; None stops."""
        if name is not None:
            load_model(self.root / name)
        self._write({**self._state(), "shadow": name})

    def promote(self) -> str:
        doc = self._state()
        shadow = doc.get("shadow")
        if not shadow:
            raise Conflict("no_shadow_model", f"no shadow model in {self.root / REGISTRY} to "
                           "promote")
        history = [*doc.get("history", []), {"incumbent": doc.get("incumbent"),
                                             "replaced_by": shadow,
                                             "at": self._now() if self._now else None}]
        self._write({**doc, "incumbent": shadow, "shadow": None, "history": history})
        return str(shadow)

    def _write(self, doc: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{REGISTRY}.{os.getpid()}"
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.root / REGISTRY)  # atomic: a reader sees the old or the new file
        with self._lock:
            self._seen = None


def write_heuristic(path: Path, params: HeuristicParams) -> None:
    """A heuristic model file (its params, e.g. freshly measured interval ratios)."""
    path.write_text(json.dumps({"kind": "heuristic", "name": params.name,
                                "params": {f.name: getattr(params, f.name)
                                           for f in fields(HeuristicParams)}}, indent=2) + "\n")
