"""Pure Drive rules: windows, proof, thresholds, notices."""

from __future__ import annotations

import pytest

from lastmile.core.delivery.model import ProofRequirement, TimeWindow
from lastmile.core.delivery.notices import NoticeKind, notices_for, retry_delay_s
from lastmile.core.delivery.proof import (
    GivenProof,
    check_proof,
    check_undeliverable_action,
    missing_proof,
)
from lastmile.core.delivery.thresholds import (
    CourierFix,
    InFlight,
    Threshold,
    ThresholdRules,
    evaluate_thresholds,
)
from lastmile.core.delivery.windows import validate_windows
from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point

NOW = 1_000_000.0
DROP = Point(lat=37.44, lng=-122.14)


def w(start: float, end: float) -> TimeWindow:
    return TimeWindow(start_at=NOW + start, end_at=NOW + end)


def test_a_window_must_start_before_it_ends() -> None:
    with pytest.raises(InvalidInput) as e:
        TimeWindow(start_at=NOW, end_at=NOW)
    assert e.value.code == "invalid_window"


def test_a_window_that_already_ended_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as e:
        validate_windows(pickup=w(-600, -60), dropoff=None, now=NOW, travel_s=600)
    assert (e.value.code, e.value.field) == ("window_in_past", "pickup_window.end")


def test_a_window_more_than_a_week_ahead_is_refused() -> None:
    with pytest.raises(InvalidInput) as e:
        validate_windows(pickup=None, dropoff=w(8 * 86400, 8 * 86400 + 60), now=NOW, travel_s=60)
    assert e.value.code == "window_too_far"


def test_a_dropoff_window_closing_before_the_parcel_can_arrive_is_unreachable() -> None:
    with pytest.raises(InvalidInput) as e:
        validate_windows(pickup=w(3600, 4000), dropoff=w(0, 3900), now=NOW, travel_s=600)
    assert (e.value.code, e.value.field) == ("dropoff_window_unreachable", "dropoff_window.end")


def test_reachable_windows_pass() -> None:
    validate_windows(pickup=w(600, 1200), dropoff=w(1200, 3600), now=NOW, travel_s=900)
    validate_windows(pickup=None, dropoff=w(0, 1000), now=NOW, travel_s=900)


def test_missing_proofs_are_all_named() -> None:
    required = ProofRequirement(photo=True, signature=True, pin=True)
    assert missing_proof(required, GivenProof(photo_ref="p.jpg", pin=" ")) == ("signature", "pin")
    with pytest.raises(InvalidInput) as e:
        check_proof(required, GivenProof(photo_ref="p.jpg"))
    assert e.value.code == "proof_missing"
    assert e.value.extra["missing"] == ["signature", "pin"]


def test_no_requirement_needs_no_proof() -> None:
    check_proof(ProofRequirement(), GivenProof())


def test_leave_at_door_cannot_promise_a_pin_or_signature() -> None:
    with pytest.raises(InvalidInput) as e:
        check_undeliverable_action(ProofRequirement(pin=True), "leave_at_door")
    assert e.value.code == "incompatible_undeliverable_action"
    check_undeliverable_action(ProofRequirement(photo=True), "leave_at_door")
    check_undeliverable_action(ProofRequirement(pin=True), "return_to_pickup")


def flight(status: str = "picked_up", window: TimeWindow | None = None) -> InFlight:
    return InFlight(status=status, dropoff=DROP, eta_expected_at=NOW + 1200,
                    eta_high_at=NOW + 1800, dropoff_window=window)


def fix_at(metres_north: float) -> CourierFix:
    return CourierFix(point=Point(lat=DROP.lat + metres_north / 111_195, lng=DROP.lng), at=NOW)


def kinds(hits: tuple) -> list[str]:  # type: ignore[type-arg]
    return [h.kind.value for h in hits]


def test_a_courier_close_to_the_dropoff_crosses_eta_and_proximity() -> None:
    hits = evaluate_thresholds(flight(), fix_at(300), NOW, ThresholdRules())
    assert kinds(hits) == ["eta_under", "courier_nearby"]
    assert hits[1].data["distance_m"] == 300


def test_a_far_courier_crosses_nothing() -> None:
    assert evaluate_thresholds(flight(), fix_at(5_000), NOW, ThresholdRules()) == ()


def test_proximity_needs_a_position_and_a_parcel_on_board() -> None:
    assert evaluate_thresholds(flight(), None, NOW, ThresholdRules()) == ()
    assert evaluate_thresholds(flight("assigned"), fix_at(10), NOW, ThresholdRules()) == ()


def test_late_past_the_window_end_is_delayed_even_before_pickup() -> None:
    hits = evaluate_thresholds(flight("confirmed", w(0, 600)), None, NOW + 700, ThresholdRules())
    assert kinds(hits) == ["delayed"]
    assert hits[0].data["late_by_s"] == 100


def test_without_a_window_the_quote_high_end_is_the_deadline() -> None:
    rules = ThresholdRules(eta_under_s=None, nearby_m=None, delay_grace_s=60)
    assert evaluate_thresholds(flight("ready"), None, NOW + 1850, rules) == ()
    assert kinds(evaluate_thresholds(flight("ready"), None, NOW + 1861, rules)) == ["delayed"]


def test_a_finished_delivery_crosses_nothing() -> None:
    hits = evaluate_thresholds(flight("delivered"), fix_at(1), NOW + 99_999, ThresholdRules())
    assert hits == ()


def test_switched_off_thresholds_never_fire() -> None:
    rules = ThresholdRules(eta_under_s=None, nearby_m=None)
    assert Threshold.ETA_UNDER not in {h.kind for h in
                                       evaluate_thresholds(flight(), fix_at(1), NOW, rules)}


def test_delivered_event_notifies_all_three_sides_and_skips_unknown_parties() -> None:
    got = notices_for("order.delivered", order_id="ord_1",
                      parties={"consumer": "con_1", "merchant": "mer_1", "courier": None})
    assert [(n.kind, n.recipient_kind) for n in got] == [
        (NoticeKind.DELIVERED, "consumer"), (NoticeKind.DELIVERED, "merchant")]
    assert "ord_1" in got[0].body


def test_events_without_a_rule_notify_nobody() -> None:
    assert notices_for("order.ready", order_id="o", parties={"consumer": "c"}) == ()


def test_notice_retries_back_off_and_cap() -> None:
    assert [retry_delay_s(n, base_s=10, cap_s=50) for n in (1, 2, 3, 4)] == [10, 20, 40, 50]
