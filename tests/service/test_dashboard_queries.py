"""Dashboard KPIs read the event history in a fixed number of queries."""

import sqlalchemy as sa

from lastmile.app import dashboard, fulfilment, shifts
from lastmile.core.orders import SYSTEM
from lastmile.sim.seed import DEMO_REGION_ID


def _queries(p) -> int:
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(p.container.engine, "before_cursor_execute", count)
    try:
        dashboard.kpis(p.services, DEMO_REGION_ID)
    finally:
        sa.event.remove(p.container.engine, "before_cursor_execute", count)
    return len(statements)


def test_kpis_cost_the_same_queries_however_many_couriers_worked(sqlite_platform):
    p = sqlite_platform
    before = _queries(p)
    for cid in p.seed.courier_ids:
        fulfilment.start_shift(p.services, cid, device_id="d", ends_at=p.clock.now() + 3600,
                               actor=SYSTEM)
        p.clock.advance(60)
        shifts.end_shift(p.services, cid, actor=SYSTEM, live=p.container.live)
    assert _queries(p) == before


def test_shift_spans_count_couriers_active_at_each_step(sqlite_platform):
    p = sqlite_platform
    cid = p.seed.courier_ids[0]
    fulfilment.start_shift(p.services, cid, device_id="d", ends_at=p.clock.now() + 7200,
                           actor=SYSTEM)
    p.clock.advance(600)
    k = dashboard.kpis(p.services, DEMO_REGION_ID, window_s=1200, step_s=300)
    assert [s.active_couriers for s in k.series] == [0, 0, 1, 1, 1]
