import numpy as np
import pytest

from lastmile.core.dispatch import DispatchPolicy, TravelModel
from lastmile.core.errors import InvalidInput


def test_travel_time_is_ceil_of_metres_over_speed_in_whole_steps():
    t = TravelModel(metres_per_step=320.0, step_s=60.0)
    assert list(t.seconds(np.array([0.0, 1.0, 320.0, 321.0]))) == [0.0, 60.0, 60.0, 120.0]
    assert t.seconds_between(0, 0, 300, 400) == 120.0


def test_travel_model_rejects_non_positive_speed():
    with pytest.raises(InvalidInput) as e:
        TravelModel(metres_per_step=0.0)
    assert e.value.field == "metres_per_step"


def test_order_ready_before_placement_is_rejected(an_order):
    with pytest.raises(InvalidInput) as e:
        an_order(placed_s=100.0, ready_s=50.0)
    assert "o1" in e.value.message


def test_policy_rejects_bundle_size_below_one():
    with pytest.raises(InvalidInput):
        DispatchPolicy(max_bundle_size=0)
