"""The scale-out bus through the app: with LASTMILE_NATS_URL set the container runs the
JetStream relay and consumers, ops see each consumer's lag, and a dead-letter replay reaches
its one subscriber through the log."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))

from eventlog_harness import nats_available, unique_config, wait_for  # noqa: E402

from fault_proxy import FaultProxy  # noqa: E402
from lastmile.adapters.bus.jetstream import JetStreamBus  # noqa: E402
from lastmile.api.app import create_app  # noqa: E402
from lastmile.app.auth import issue_api_key  # noqa: E402
from lastmile.app.context import new_event, record  # noqa: E402
from lastmile.bootstrap import build  # noqa: E402
from lastmile.cli import app as cli  # noqa: E402
from lastmile.settings import Settings  # noqa: E402


@pytest.mark.nats
def test_nats_settings_run_the_log_and_ops_replay_through_it(tmp_path: Path):
    if reason := nats_available():
        pytest.skip(reason)
    config = unique_config()
    container = build(Settings(data_dir=tmp_path, nats_url=config.url,
                               nats_stream=config.stream, nats_prefix=config.prefix))
    assert isinstance(container.bus, JetStreamBus)
    services = container.services
    ops = {"Authorization": f"Bearer {issue_api_key(services, role='ops', subject_id='o')[1]}"}
    got: list[str] = []
    try:
        with TestClient(create_app(container)) as client:  # starts relay and consumers
            container.bus.subscribe("test.happened", lambda e: got.append(e.event_id),
                                    durable="ops-probe")
            wait_for(lambda: "ops-probe" in container.bus.lag(), 10)
            with services.uow() as uow:
                event = new_event(services, type="test.happened", region_id="r1",
                                  subject_id="s1", actor_kind="system", actor_id="system")
                record(uow, services, event)
                uow.commit()
            wait_for(lambda: got == [event.event_id], 20)  # relay thread -> stream -> consumer

            assert 'lastmile_event_bus_pending{consumer="ops-probe"} 0.0' in _metrics(client)
            relay = client.get("/v1/ops/relay", headers=ops).json()
            assert set(relay["lag"]) == {"drive-webhooks", "drive-notifications",
                                         "testkit-auto-accept", "ledger", "ops-probe",
                                         "payments-capture", "payments-void"}
            assert relay["consumers"]["ops-probe"]["delivered"] == 1

            with services.uow() as uow:  # as a consumer parks an event it gave up on
                uow.event_deliveries.park_event(
                    subscriber="ops-probe", seq=1, event=event, attempts=10, error="boom",
                    at=1.0, first_failed_at=1.0, dead_letter_id="dlt_probe")
                uow.commit()
            url = "/v1/ops/dead-letters/dlt_probe/replay"
            assert client.post(url, headers=ops).json()["queued"] is True
            assert client.post(url, headers=ops).json()["queued"] is False
            wait_for(lambda: got == [event.event_id, event.event_id], 20)  # once more, alone
            letters = client.get("/v1/ops/dead-letters", headers=ops).json()["dead_letters"]
            assert letters == []

            with services.uow() as uow:  # parked again (the same letter reopens): the CLI
                uow.event_deliveries.park_event(
                    subscriber="ops-probe", seq=1, event=event, attempts=10, error="boom",
                    at=2.0, first_failed_at=1.0, dead_letter_id="dlt_unused")
                uow.commit()
            env = {"LASTMILE_NATS_URL": config.url, "LASTMILE_NATS_STREAM": config.stream,
                   "LASTMILE_NATS_PREFIX": config.prefix}
            replayed = CliRunner().invoke(
                cli, ["deadletters", "replay", "dlt_probe", "--data-dir", str(tmp_path)], env=env)
            assert replayed.exit_code == 0, replayed.output
            assert "queued for ops-probe" in replayed.output
            wait_for(lambda: len(got) == 3, 20)
    finally:
        bus = container.bus
        other = JetStreamBus(bus.config)  # the app's bus is closed with the container
        other.delete_stream()
        other.close()


def test_without_a_nats_url_the_bus_stays_in_process(tmp_path: Path):
    container = build(Settings(data_dir=tmp_path))
    try:
        assert not isinstance(container.bus, JetStreamBus)
        assert container.requeue is None and container.event_log_report() == {}
        with TestClient(create_app(container)) as client:
            def refuse(event: object) -> None:  # stays queued: the relay thread retries later
                raise RuntimeError("not yet")

            container.bus.subscribe("*", refuse, durable="lag-probe")
            assert container.outbox_relay is not None
            container.outbox_relay.run_once()  # registers the probe
            with container.services.uow() as uow:
                record(uow, container.services, new_event(
                    container.services, type="test.happened", region_id="r1",
                    subject_id="s1", actor_kind="system", actor_id="system"))
                uow.commit()
            container.outbox_relay.fan_out()  # type: ignore[union-attr]  # queued, not delivered
            assert container.event_lag()["lag-probe"] >= 1
            # In process the relay's queue is the lag: the same collector reads it.
            assert 'lastmile_event_consumer_pending{consumer="lag-probe"} 1.0' in _metrics(client)
            assert 'lastmile_event_consumer_retrying{consumer="lag-probe"}' in _metrics(client)
    finally:
        container.close()


def _metrics(client: TestClient) -> str:
    return client.get("/metrics").text



@pytest.mark.nats
@pytest.mark.slow
def test_an_app_started_while_nats_is_down_starts_and_catches_up_when_it_is_back(
        tmp_path: Path):
    if reason := nats_available():
        pytest.skip(reason)
    proxy = FaultProxy(("127.0.0.1", 4222))  # stopped in the finally below
    proxy.cut("refuse")
    config = unique_config()
    container = build(Settings(data_dir=tmp_path, nats_url=f"nats://127.0.0.1:{proxy.port}",
                               nats_stream=config.stream, nats_prefix=config.prefix))
    got: list[str] = []
    try:
        container.bus.subscribe("test.happened", lambda e: got.append(e.event_id),
                                durable="late-probe")
        started = time.monotonic()
        with TestClient(create_app(container)):  # relay, consumers, hub: NATS unreachable
            assert time.monotonic() - started < 15  # one timeout per kind of call, no hang
            services = container.services
            with services.uow() as uow:
                event = new_event(services, type="test.happened", region_id="r1",
                                  subject_id="s1", actor_kind="system", actor_id="system")
                record(uow, services, event)
                uow.commit()
            proxy.restore()
            wait_for(lambda: got == [event.event_id], 30)  # the outbox waited for NATS
    finally:
        other = JetStreamBus(config)
        other.delete_stream()
        other.close()
        proxy.stop()
