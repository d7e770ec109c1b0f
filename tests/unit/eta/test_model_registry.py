"""ETA model files and their registry (adapters.eta_models) and the promotion rule (app.eta)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lastmile.adapters.eta_models import FileModelRegistry, load_model, write_heuristic
from lastmile.app.eta import LiveError, decide_promotion
from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.eta.engine import HeuristicParams


def _registry(tmp_path: Path, **doc: object) -> FileModelRegistry:
    write_heuristic(tmp_path / "heuristic-1.json", HeuristicParams(name="heuristic-1"))
    write_heuristic(tmp_path / "heuristic-2.json",
                    HeuristicParams(name="heuristic-2", p10_ratio=0.7, p90_ratio=1.5))
    (tmp_path / "registry.json").write_text(json.dumps(doc))
    return FileModelRegistry(tmp_path, now=lambda: 123.0)


def test_no_registry_file_means_the_heuristic_serves_and_nothing_shadows(tmp_path: Path) -> None:
    registry = FileModelRegistry(tmp_path)
    assert registry.incumbent() is None and registry.shadow() is None


def test_the_registry_names_the_incumbent_and_the_shadow_files(tmp_path: Path) -> None:
    registry = _registry(tmp_path, incumbent="heuristic-1.json", shadow="heuristic-2.json")
    incumbent, shadow = registry.incumbent(), registry.shadow()
    assert incumbent is not None and incumbent.name == "heuristic-1"
    assert shadow is not None and shadow.name == "heuristic-2"


def test_promotion_makes_the_shadow_the_incumbent_and_keeps_the_history(tmp_path: Path) -> None:
    registry = _registry(tmp_path, incumbent="heuristic-1.json", shadow="heuristic-2.json")
    assert registry.promote() == "heuristic-2.json"
    incumbent = registry.incumbent()
    assert incumbent is not None and incumbent.name == "heuristic-2"
    assert registry.shadow() is None
    assert registry.files()["history"] == [
        {"incumbent": "heuristic-1.json", "replaced_by": "heuristic-2.json", "at": 123.0}]


def test_there_is_nothing_to_promote_without_a_shadow(tmp_path: Path) -> None:
    registry = _registry(tmp_path, incumbent="heuristic-1.json")
    with pytest.raises(Conflict) as err:
        registry.promote()
    assert err.value.code == "no_shadow_model"


def test_a_shadow_is_checked_by_loading_it_before_it_is_set(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    registry.set_shadow("heuristic-2.json")
    assert registry.files()["shadow"] == "heuristic-2.json"
    with pytest.raises(InvalidInput):
        registry.set_shadow("missing.json")


def test_a_model_file_of_an_unknown_kind_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(json.dumps({"kind": "crystal-ball"}))
    with pytest.raises(InvalidInput) as err:
        load_model(tmp_path / "m.json")
    assert "m.json" in err.value.message and "crystal-ball" in err.value.message


def test_a_heuristic_file_with_ratios_that_do_not_bracket_the_point_is_refused(
        tmp_path: Path) -> None:
    (tmp_path / "h.json").write_text(json.dumps({"kind": "heuristic",
                                                 "params": {"p10_ratio": 1.2}}))
    with pytest.raises(InvalidInput) as err:
        load_model(tmp_path / "h.json")
    assert "h.json" in err.value.message


def _err(model: str, mae: float, orders: int = 500) -> LiveError:
    return LiveError(model=model, orders=orders, mae_s=mae, coverage80=0.8)


def test_a_shadow_is_promoted_only_when_its_live_error_beats_the_incumbent_s() -> None:
    assert decide_promotion(_err("a", 400), _err("b", 300)).promote
    assert not decide_promotion(_err("a", 300), _err("b", 300)).promote  # a tie keeps a
    assert not decide_promotion(_err("a", 300), _err("b", 400)).promote


def test_no_promotion_on_too_few_orders_or_none() -> None:
    few = decide_promotion(_err("a", 400, 10), _err("b", 100, 10), min_orders=200)
    assert not few.promote and "need 200" in few.reason
    assert not decide_promotion(None, None).promote
