"""The order path's queries, as narrowed for speed: pricing counts only the orders still
waiting for a courier, never the region's whole history."""

from fakes import in_memory
from lastmile.app import fulfilment, queries
from lastmile.app.ordering import LineRequest, OrderRequest, place_order, supply_demand
from lastmile.core.geo import Point
from lastmile.core.orders import Actor, ActorKind
from lastmile.sim.seed import DEMO_REGION_ID

DROP = Point(lat=37.445, lng=-122.15)


def _place(p, key):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    req = OrderRequest(consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
                       lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=DROP)
    return place_order(p.services, req, idempotency_key=key).order


@in_memory
def test_counting_by_status_can_be_limited_to_some_statuses(platform):
    p = platform
    kept, cancelled = _place(p, "k1"), _place(p, "k2")
    fulfilment.cancel_order(p.services, cancelled.id, reason="changed my mind",
                            actor=Actor(kind=ActorKind.CONSUMER, id=kept.consumer_id))
    with p.services.uow(read_only=True) as uow:
        every = uow.orders.count_by_status(DEMO_REGION_ID)
        placed = uow.orders.count_by_status(DEMO_REGION_ID, statuses={"placed"})
        none = uow.orders.count_by_status(DEMO_REGION_ID, statuses=set())
    assert every == {"placed": 1, "cancelled": 1}
    assert placed == {"placed": 1} and none == {}


@in_memory
def test_the_price_sees_waiting_orders_and_not_finished_ones(platform):
    p = platform
    order = _place(p, "k1")
    with p.services.uow(read_only=True) as uow:
        assert supply_demand(uow, DEMO_REGION_ID).open_orders == 1
    fulfilment.cancel_order(p.services, order.id, reason="changed my mind",
                            actor=Actor(kind=ActorKind.CONSUMER, id=order.consumer_id))
    with p.services.uow(read_only=True) as uow:
        assert supply_demand(uow, DEMO_REGION_ID).open_orders == 0


def test_a_dispatch_rounds_pending_offers_read_uses_an_index_not_a_scan(tmp_path):
    # Every round reads its region's pending offers; the offers table grows all day.
    import sqlalchemy as sa

    from lastmile.bootstrap import build
    from lastmile.settings import Settings

    container = build(Settings(data_dir=tmp_path))
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if "FROM offers" in statement:
            seen.append((statement, parameters))

    try:
        engine = container.engine
        sa.event.listen(engine, "before_cursor_execute", capture)
        with container.services.uow(read_only=True) as uow:
            assert uow.offers.pending_in_region("reg_x") == []
        sa.event.remove(engine, "before_cursor_execute", capture)
        (sql, params), = seen
        with engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {sql}", params))
    finally:
        container.close()
    assert "USING INDEX ix_offers_region_status" in plan, plan
