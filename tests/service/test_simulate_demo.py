"""``lastmile demo`` machinery: a tiny city through the real HTTP API in accelerated time."""

import socket

import httpx
import pytest

from lastmile.sim.demo import AcceleratedClock, start_demo
from lastmile.sim.kpis import compute_kpis, ledger_kpis
from lastmile.sim.scenarios import get_scenario
from lastmile.sim.simulate_command import settle_ledger


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_accelerated_clock_runs_speed_times_faster():
    # The wall clock is injected: patching time.monotonic would reach every thread of the
    # test process (a server another test module started), which then hangs on it.
    wall = iter([100.0, 102.0])
    clock = AcceleratedClock(start=1_000.0, speed=60, wall=lambda: next(wall))
    assert clock.now() == 1_000.0 + 2.0 * 60


@pytest.mark.xdist_group("realtime")  # real time at 120x: not beside the benches (README)
def test_tiny_demo_delivers_orders_through_http(tmp_path):
    port = _free_port()
    # 60x (40 s of wall time): the demo runs in real time, and at 240x a loaded machine
    # (CI beside other jobs) delivered 2 orders where a quiet one delivers 6 or more; at 120x
    # so did a machine running the suite on 4 workers beside other jobs (load average 22).
    run = start_demo(get_scenario("tiny"), seed=7, minutes=40, speed=60, port=port,
                     data_dir=tmp_path, dispatch_every_s=30)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        assert f"region={run.region_id}#key=" in run.dashboard_url()
        assert run.dashboard_urls() == [run.dashboard_url(r.id) for r in run.setup.city.regions]
        log = run.world.run()
        dispatcher = run.container.dispatcher
        assert dispatcher is not None and dispatcher.stats.rounds > 0
        assert dispatcher.stats.errors == 0, dispatcher.stats.last_error
        money = ledger_kpis(settle_ledger(run.container))  # the demo's KPI table shows them
        assert money["ledger_gmv_minor"] > 0 and money["ledger_take_rate"] is not None
    finally:
        run.close()
    kpis = compute_kpis(log)
    assert run.actions.calls > 50
    assert kpis["orders_delivered"] >= 3, kpis
    assert not any(code.startswith("http_5") for code in kpis["refusals"]), kpis["refusals"]


def _demo_leftovers(port: int) -> list[str]:
    """What a finished demo must not leave behind: a live server thread or a bound port."""
    import threading

    left = [t.name for t in threading.enumerate() if t.name == "api-server" and t.is_alive()]
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            left.append(f"port {port} still bound")
    return left


def _run_demo_command(monkeypatch, tmp_path, interrupt: BaseException) -> tuple[object, int]:
    import tempfile

    from typer.testing import CliRunner

    from lastmile.cli import app
    from lastmile.sim import world

    def broken_run(self, **kwargs):
        self.log.end = self.log.start
        raise interrupt

    monkeypatch.setattr(world.World, "run", broken_run)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the demo's temp folder goes
    port = _free_port()
    result = CliRunner().invoke(app, ["demo", "--scenario", "tiny", "--minutes", "5",
                                      "--speed", "60", "--port", str(port)])
    return result, port


def test_a_demo_that_fails_mid_run_still_stops_its_server_and_removes_its_data(
        monkeypatch, tmp_path):
    result, port = _run_demo_command(monkeypatch, tmp_path, RuntimeError("world broke"))
    assert isinstance(result.exception, RuntimeError)
    assert _demo_leftovers(port) == []
    assert list(tmp_path.glob("lastmile-demo-*")) == []


def test_ctrl_c_stops_the_demo_early_prints_the_kpis_and_frees_the_port(monkeypatch, tmp_path):
    result, port = _run_demo_command(monkeypatch, tmp_path, KeyboardInterrupt())
    assert result.exit_code == 0, result.output
    assert '"orders_placed"' in result.output and '"dispatch_errors": 0' in result.output
    assert _demo_leftovers(port) == []
    assert list(tmp_path.glob("lastmile-demo-*")) == []


def test_a_multi_city_demo_offers_one_dashboard_per_region(tmp_path):
    port = _free_port()
    run = start_demo(get_scenario("valentines"), seed=7, minutes=1, speed=60, port=port,
                     data_dir=tmp_path, dispatch_every_s=30)
    try:
        urls = run.dashboard_urls()
        assert len(urls) == 5 and len({u.split("region=")[1].split("&")[0] for u in urls}) == 5
        for url in urls:
            assert httpx.get(url).status_code == 200
    finally:
        run.close()
