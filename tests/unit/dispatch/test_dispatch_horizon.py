from lastmile.core.dispatch.horizon import should_commit

BASE = {
    "now_s": 600.0,
    "courier_free_s": 0.0,
    "courier_shift_start_s": 0.0,
    "pickup_service_s": 240.0,
    "commit_slack_s": 120.0,
}


def test_commits_when_the_courier_must_leave_now_to_be_on_time():
    assert should_commit(**BASE, ready_s=600.0 + 300.0, travel_s=180.0)


def test_postpones_when_the_order_is_ready_much_later():
    assert not should_commit(**BASE, ready_s=600.0 + 1800.0, travel_s=180.0)


def test_late_orders_are_committed_at_once():
    assert should_commit(**BASE, ready_s=0.0, travel_s=600.0)


def test_never_commits_a_courier_that_is_still_busy():
    args = {**BASE, "courier_free_s": 700.0}
    assert not should_commit(**args, ready_s=0.0, travel_s=60.0)


def test_never_commits_a_courier_before_its_shift_starts():
    args = {**BASE, "courier_shift_start_s": 900.0}
    assert not should_commit(**args, ready_s=0.0, travel_s=60.0)
