import pytest

from lastmile.core.errors import InvalidInput
from lastmile.sim.mdrp.instance import load_instance


def test_loads_every_file_of_an_instance(tiny_instance):
    inst = load_instance(tiny_instance)
    assert inst.name == "0o100t100s1p100"
    assert [o.order_id for o in inst.orders] == ["o1", "o2", "o3", "o4"]
    assert inst.couriers[1].off_time == 60
    assert inst.params.meters_per_minute == 320
    assert inst.params.pickup_service_min == 4


def test_travel_time_is_the_ceiling_of_metres_over_speed(tiny_instance):
    inst = load_instance(tiny_instance)
    assert inst.travel_min(0, 0, 320, 0) == 1
    assert inst.travel_min(0, 0, 321, 0) == 2
    assert inst.travel_min(0, 0, 0, 0) == 0


def test_a_missing_file_names_the_file(tiny_instance):
    (tiny_instance / "couriers.txt").unlink()
    with pytest.raises(InvalidInput) as e:
        load_instance(tiny_instance)
    assert e.value.field == "couriers.txt"


def test_an_order_of_an_unknown_restaurant_is_rejected(instance_writer):
    folder = instance_writer(orders=[("o1", 0, 0, 0, "r9", 5)])
    with pytest.raises(InvalidInput) as e:
        load_instance(folder)
    assert "r9" in e.value.message


@pytest.mark.parametrize(("pickup", "dropoff"), [(5, 4), (4, 3), (4.5, 4)])
def test_service_times_that_do_not_halve_into_whole_minutes_are_rejected(
    instance_writer, pickup, dropoff
):
    folder = instance_writer(params=(320, pickup, dropoff, 40, 90, 10, 15))
    with pytest.raises(InvalidInput) as e:
        load_instance(folder)
    assert e.value.code == "invalid_service_time"
