"""Ops list and replay dead letters through the API (ops key only, problem+json errors) and
the CLI; the relay's counters are visible."""

from typer.testing import CliRunner

from lastmile.adapters.bus.outbox import Relay, RelayPolicy
from lastmile.app.context import new_event, record
from lastmile.cli import app as cli
from lastmile.core.webhooks import RetryPolicy

PARK_AT_ONCE = RelayPolicy(retry=RetryPolicy(base_s=1.0, cap_s=1.0, max_attempts=1))


def _park_one(p) -> tuple[str, list[str]]:
    """A durable subscriber that refuses one event, parked at its first failure."""
    Relay(p.services, p.container.bus).drain()  # the seed's events
    with p.services.uow() as uow:
        event = new_event(p.services, type="test.happened", region_id="reg_t", subject_id="s",
                          actor_kind="system", actor_id="system")
        record(uow, p.services, event)
        uow.commit()
    fixed, got = [], []

    def handler(e):
        if e.event_id == event.event_id and not fixed:
            raise RuntimeError("downstream is down")
        got.append(e.event_id)

    p.container.bus.subscribe("*", handler, durable="fragile")
    relay = Relay(p.services, p.container.bus, policy=PARK_AT_ONCE)
    p.container.outbox_relay = relay
    relay.drain()
    fixed.append(True)
    return event.event_id, got


def test_ops_list_and_replay_a_dead_letter_once(api):
    p = api.platform
    event_id, got = _park_one(p)
    listed = api.client.get("/v1/ops/dead-letters", headers=api.h("ops"))
    assert listed.status_code == 200
    [letter] = listed.json()["dead_letters"]
    assert letter["subscriber"] == "fragile" and letter["event"]["event_id"] == event_id
    assert letter["attempts"] == 1 and "downstream is down" in letter["last_error"]

    url = f"/v1/ops/dead-letters/{letter['id']}/replay"
    first = api.client.post(url, headers=api.h("ops"))
    second = api.client.post(url, headers=api.h("ops"))
    assert first.status_code == second.status_code == 200
    assert first.json()["queued"] and not second.json()["queued"]
    p.container.outbox_relay.drain()
    assert got == [event_id]
    assert api.client.get("/v1/ops/dead-letters", headers=api.h("ops")).json() == {
        "dead_letters": []}

    relay = api.client.get("/v1/ops/relay", headers=api.h("ops")).json()
    fragile = next(s for s in relay["subscribers"] if s["name"] == "fragile")
    assert (fragile["pending"], fragile["parked"]) == (0, 0)
    assert relay["this_process"]["counts"]["parked"] == 1
    assert relay["this_process"]["counts"]["delivered"] == 1


def test_dead_letters_are_for_ops_only_and_errors_are_problems(api):
    for path in ("/v1/ops/dead-letters", "/v1/ops/relay"):
        refused = api.client.get(path, headers=api.h("merchant"))
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
    missing = api.client.post("/v1/ops/dead-letters/dlt_nope/replay", headers=api.h("ops"))
    assert missing.status_code == 404 and missing.json()["code"] == "dead_letter_not_found"
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad = api.client.get("/v1/ops/dead-letters?limit=0", headers=api.h("ops"))
    assert bad.status_code == 422


def test_the_cli_lists_and_replays_dead_letters(sqlite_platform):
    p = sqlite_platform
    event_id, _ = _park_one(p)
    where = ["--data-dir", str(p.container.settings.data_dir)]
    listed = CliRunner().invoke(cli, ["deadletters", "list", *where])
    assert listed.exit_code == 0, listed.output
    assert "fragile" in listed.output and "1 dead letter(s)" in listed.output
    with p.services.uow(read_only=True) as uow:
        [letter] = uow.event_deliveries.dead_letters()
    first = CliRunner().invoke(cli, ["deadletters", "replay", letter.id, *where])
    again = CliRunner().invoke(cli, ["deadletters", "replay", letter.id, *where])
    assert first.exit_code == again.exit_code == 0
    assert "queued for fragile" in first.output and "already replayed" in again.output
    unknown = CliRunner().invoke(cli, ["deadletters", "replay", "dlt_nope", *where])
    assert unknown.exit_code == 2 and "does not exist" in unknown.output
