import pytest

from lastmile.core.errors import Forbidden, InvalidInput
from lastmile.core.tracking import PingFlag, Reason, TrackingPolicy, classify, classify_batch

from .builders import COURIER, LAT0, MAIN, OTHER, POLICY, T0, a_ping, a_track


def run(state, *pings, policy=POLICY):
    verdicts = []
    for ping in pings:
        state, verdict = classify(state, ping, policy)
        verdicts.append(verdict)
    return state, verdicts


def walk(device, start_ts, n, *, lat0=LAT0, step_deg=0.0005, every_s=10.0, **overrides):
    """n pings ~55 m apart every 10 s: a courier on a bike."""
    return [
        a_ping(
            device_id=device, lat=lat0 + i * step_deg, client_ts=start_ts + i * every_s, **overrides
        )
        for i in range(n)
    ]


def test_first_ping_of_the_main_device_moves_the_courier():
    ping = a_ping()
    state, verdict = classify(a_track(), ping, POLICY)
    assert verdict.accepted and verdict.is_from_main_device
    assert verdict.reason == Reason.ACCEPTED
    assert state.position == ping


def test_the_device_that_authenticated_for_the_shift_is_the_main_device():
    state = a_track(main_device_id="dev_phone")
    assert state.main_device_id == "dev_phone"


def test_a_banned_device_cannot_start_a_shift():
    with pytest.raises(Forbidden) as err:
        a_track(banned_device_ids=frozenset({MAIN}))
    assert err.value.code == "banned_device"


def test_duplicate_ping_is_dropped_and_does_not_move_twice():
    ping = a_ping()
    state, (first, second) = run(a_track(), ping, ping)
    assert first.accepted and not second.accepted
    assert second.reason == Reason.DUPLICATE and second.is_from_main_device
    assert state.count(Reason.DUPLICATE) == 1


def test_ping_older_than_the_last_one_of_its_device_is_dropped_as_out_of_order():
    newer, older = a_ping(client_ts=T0 + 20), a_ping(client_ts=T0 + 10, lat=LAT0 + 0.0001)
    state, (_, verdict) = run(a_track(), newer, older)
    assert verdict.reason == Reason.OUT_OF_ORDER
    assert state.position == newer


def test_other_device_does_not_move_the_courier_while_the_main_device_is_fresh():
    main = a_ping(client_ts=T0 + 10)
    others = walk(OTHER, T0 + 11, 5, lat0=LAT0 + 0.01)
    state, verdicts = run(a_track(), main, *others)
    assert all(v.reason == Reason.NOT_MAIN_DEVICE for v in verdicts[1:])
    assert not any(v.is_from_main_device for v in verdicts[1:])
    assert state.position == main and state.main_device_id == MAIN


def test_impossible_jump_is_flagged_and_does_not_move_the_courier():
    start = a_ping(client_ts=T0 + 10)
    teleport = a_ping(lat=LAT0 + 0.1, client_ts=T0 + 20)  # 11 km in 10 s
    state, (_, verdict) = run(a_track(), start, teleport)
    assert verdict.reason == Reason.IMPOSSIBLE_JUMP and not verdict.accepted
    assert PingFlag.IMPOSSIBLE_JUMP in verdict.flags
    assert state.position == start


def test_fast_but_possible_move_is_accepted():
    start = a_ping(client_ts=T0 + 10)
    car = a_ping(lat=LAT0 + 0.003, client_ts=T0 + 20)  # ~330 m in 10 s: 33 m/s
    _, (_, verdict) = run(a_track(), start, car)
    assert verdict.accepted


def test_wide_accuracy_radii_excuse_an_apparent_jump():
    start = a_ping(client_ts=T0 + 10, accuracy_m=100.0)
    fuzzy = a_ping(lat=LAT0 + 0.006, client_ts=T0 + 20, accuracy_m=100.0)  # 667 m - 200 m
    _, (_, verdict) = run(a_track(), start, fuzzy)
    assert verdict.accepted


def test_device_reanchors_after_consecutive_agreeing_jumps():
    glitch = a_ping(lat=LAT0 + 0.1, client_ts=T0 + 10)  # the first fix was the outlier
    real = walk(MAIN, T0 + 20, 3)
    state, verdicts = run(a_track(), glitch, *real)
    assert [v.reason for v in verdicts] == [
        Reason.ACCEPTED,
        Reason.IMPOSSIBLE_JUMP,
        Reason.IMPOSSIBLE_JUMP,
        Reason.ACCEPTED,
    ]
    assert PingFlag.REANCHORED in verdicts[-1].flags
    assert state.position == real[-1]


def test_stale_ping_does_not_move_the_courier():
    late = a_ping(client_ts=T0 + 10, received_ts=T0 + 71)
    state, (verdict,) = run(a_track(), late)
    assert verdict.reason == Reason.STALE and verdict.is_from_main_device
    assert state.position is None


def test_inaccurate_fix_does_not_move_the_courier():
    state, (verdict,) = run(a_track(), a_ping(accuracy_m=151.0))
    assert verdict.reason == Reason.LOW_ACCURACY
    assert state.position is None


def test_other_device_takes_over_after_main_silence_and_consistent_pings():
    main = a_ping(client_ts=T0 + 10)  # heard at T0 + 11
    others = walk(OTHER, T0 + 80, 3)  # heard from T0 + 81: main silent for 70 s > 60 s
    state, verdicts = run(a_track(), main, *others)
    assert [v.reason for v in verdicts[1:]] == [
        Reason.NOT_MAIN_DEVICE,
        Reason.NOT_MAIN_DEVICE,
        Reason.ACCEPTED,
    ]
    assert PingFlag.MAIN_DEVICE_SWITCHED in verdicts[-1].flags
    assert verdicts[-1].is_from_main_device and verdicts[-1].main_device_id == OTHER
    assert state.main_device_id == OTHER and state.switches == 1
    assert state.position == others[-1]


def test_old_main_device_no_longer_moves_the_courier_after_a_switch():
    state = _switched_to_other()
    back = a_ping(device_id=MAIN, lat=LAT0 + 0.002, client_ts=T0 + 110)
    state, verdict = classify(state, back, POLICY)
    assert verdict.reason == Reason.NOT_MAIN_DEVICE and not verdict.is_from_main_device


def test_no_takeover_while_the_main_device_is_fresh_however_consistent_the_other():
    main = walk(MAIN, T0 + 10, 10, every_s=10.0)
    others = walk(OTHER, T0 + 11, 10, every_s=10.0)
    state, _ = classify_batch(a_track(), main + others, POLICY)
    assert state.main_device_id == MAIN and state.switches == 0


def test_no_takeover_by_a_device_whose_pings_jump():
    main = a_ping(client_ts=T0 + 10)
    zigzag = [
        a_ping(device_id=OTHER, lat=LAT0 + (0.1 if i % 2 else 0.0), client_ts=T0 + 80 + 10 * i)
        for i in range(6)
    ]
    state, verdicts = run(a_track(), main, *zigzag)
    assert state.main_device_id == MAIN
    assert all(not v.accepted for v in verdicts[1:])


def test_no_takeover_by_a_device_far_from_the_couriers_last_position():
    main = a_ping(client_ts=T0 + 10)
    elsewhere = walk(OTHER, T0 + 80, 5, lat0=LAT0 + 1.0)  # 111 km away, 70 s later
    state, _ = run(a_track(), main, *elsewhere)
    assert state.main_device_id == MAIN


def test_banned_device_never_takes_over_and_is_flagged():
    banned = "dev_banned"
    pings = walk(banned, T0 + 100, 6)
    state, verdicts = run(a_track(banned_device_ids=frozenset({banned})), *pings)
    assert all(v.reason == Reason.BANNED_DEVICE for v in verdicts)
    assert all(PingFlag.BANNED_DEVICE in v.flags for v in verdicts)
    assert state.main_device_id == MAIN and state.device(banned) is None


def test_devices_beyond_the_cap_are_not_tracked_but_the_main_device_always_is():
    policy = TrackingPolicy(max_other_devices=2)
    extras = [a_ping(device_id=f"dev_{i}", client_ts=T0 + i) for i in range(3)]
    state, verdicts = run(a_track(), *extras, a_ping(client_ts=T0 + 10), policy=policy)
    assert verdicts[2].reason == Reason.TOO_MANY_DEVICES
    assert verdicts[3].accepted


def test_ping_of_another_courier_is_refused():
    with pytest.raises(InvalidInput) as err:
        classify(a_track(), a_ping(courier_id="cou_2"), POLICY)
    assert err.value.code == "courier_mismatch"


def test_counts_tally_each_reason():
    ping = a_ping()
    state, _ = run(a_track(), ping, ping, a_ping(device_id=OTHER, client_ts=T0 + 12))
    assert state.counts == (("accepted", 1), ("duplicate", 1), ("not_main_device", 1))
    assert state.courier_id == COURIER


def test_batch_is_classified_in_client_time_order_whatever_the_arrival_order():
    pings = walk(MAIN, T0 + 10, 5)
    in_order, verdicts = classify_batch(a_track(), pings, POLICY)
    shuffled, _ = classify_batch(
        a_track(), [pings[3], pings[0], pings[4], pings[2], pings[1]], POLICY
    )
    assert in_order == shuffled
    assert all(v.accepted for v in verdicts)
    assert [v.ping.client_ts for v in verdicts] == sorted(p.client_ts for p in pings)


def _switched_to_other():
    state, _ = run(a_track(), a_ping(client_ts=T0 + 10), *walk(OTHER, T0 + 80, 3))
    assert state.main_device_id == OTHER
    return state
