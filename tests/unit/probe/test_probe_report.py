"""The probe's verdict, its metrics file and its refusals, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from lastmile.probe.journey import STEPS, Journey, JourneyConfig, ProbeRefused, Step
from lastmile.probe.report import ProbeResult, summary, write_metrics
from lastmile.probe.run import run_probe


def a_result(*statuses: str, allow_skips: bool = False) -> ProbeResult:
    steps = tuple(Step(f"s{i}", status=s, latency_ms=12.5) for i, s in enumerate(statuses))
    return ProbeResult(tenant="doortest:probe", base_url="http://x", steps=steps,
                       total_ms=40.0, finished_at=1_800_000_000.0, allow_skips=allow_skips)


def test_a_run_passes_only_when_every_step_passed():
    assert a_result("pass", "pass").ok
    assert not a_result("pass", "fail").ok
    assert not a_result("pass", "not_run").ok
    assert not a_result().ok  # nothing ran is no pass


def test_a_skipped_step_fails_the_run_unless_skips_are_allowed():
    assert not a_result("pass", "skip").ok
    assert a_result("pass", "skip", allow_skips=True).ok
    assert not a_result("skip", "fail", allow_skips=True).ok


def test_the_json_names_every_step_with_its_verdict_and_latency():
    out = json.loads(a_result("pass", "skip").json_line())
    assert set(out) >= {"ok", "tenant", "base_url", "steps", "total_ms"}
    assert out["steps"][1] == {"name": "s1", "ok": False, "status": "skip",
                               "latency_ms": 12.5, "detail": ""}
    assert summary(a_result("pass", "pass", "skip").steps) == "2 pass, 1 skip"


def test_metrics_are_written_in_prometheus_text_format(tmp_path: Path):
    path = tmp_path / "collector" / "probe.prom"
    write_metrics(path, a_result("pass", "fail"))
    text = path.read_text()
    assert 'lastmile_probe_step_ok{step="s0",tenant="doortest:probe"} 1.0' in text
    assert 'lastmile_probe_step_ok{step="s1",tenant="doortest:probe"} 0.0' in text
    assert 'lastmile_probe_step_latency_seconds{step="s0",tenant="doortest:probe"} 0.0125' \
        in text
    assert 'lastmile_probe_ok{tenant="doortest:probe"} 0.0' in text
    assert 'lastmile_probe_last_run_timestamp_seconds{tenant="doortest:probe"} 1.8e+09' in text
    assert list(tmp_path.glob("collector/*")) == [path]  # no temporary file left behind


def _deployment(kind: str) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/testkit/tenant":
            return httpx.Response(200, json={"tenant": request.headers["X-Lastmile-Tenant"],
                                             "kind": kind, "test": kind == "test"})
        return httpx.Response(500, json={"code": "unexpected"})

    return httpx.MockTransport(answer)


def test_a_live_tenant_stops_the_journey_at_its_first_step():
    with httpx.Client(base_url="http://x", transport=_deployment("live")) as client:
        journey = Journey(client, JourneyConfig(tenant="acme:eats", ops_key="k"), lambda: 0.0)
        with pytest.raises(ProbeRefused, match="live tenant"):
            journey.run()
    statuses = {s.name: s.status for s in journey.steps}
    assert statuses["tenant"] == "fail" and statuses["merchant"] == "not_run"
    assert statuses["cleanup"] == "pass"  # nothing was made, nothing to clean


def test_run_probe_reports_the_refusal_and_a_failing_step():
    result, refused = run_probe(base_url="http://x", tenant="acme:eats", key="k",
                                timeout_s=1, webhook_url="https://h.invalid/",
                                allow_skips=False, transport=_deployment("live"))
    assert refused is not None and "live tenant" in refused and not result.ok
    result, refused = run_probe(base_url="http://x", tenant="doortest:probe", key="k",
                                timeout_s=1, webhook_url="https://h.invalid/",
                                allow_skips=False, transport=_deployment("test"))
    assert refused is None and not result.ok
    by_name = {s.name: s for s in result.steps}
    assert [s.name for s in result.steps] == list(STEPS)
    assert by_name["tenant"].ok and by_name["reset"].status == "fail"
    assert "500 unexpected" in by_name["reset"].detail


def _captures(answer: httpx.Response) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: answer)


def _at_webhook(transport: httpx.MockTransport) -> tuple[Journey, Step]:
    client = httpx.Client(base_url="http://x", transport=transport)
    journey = Journey(client, JourneyConfig(tenant="doortest:probe", ops_key="k",
                                            timeout_s=0.2, poll_s=0.05), lambda: 1_800_000_000.0)
    journey.ids.update(drive_order_id="ord_1", delivery_id="del_1",
                       external_delivery_id="probe-1", webhook_secret="whsec_test")
    return journey, next(s for s in journey.steps if s.name == "webhook")


def _run_step(journey: Journey, step: Step) -> Step:
    with journey._step("webhook"):
        journey.webhook(step)
    return step


def test_the_webhook_step_verifies_the_captured_signature():
    from lastmile.core.webhooks import signature_header

    body = json.dumps({"type": "delivery.delivered", "data": {"order_id": "ord_1"}})
    capture = {"id": "cap_1", "channel": "webhook", "target": "https://h.invalid/",
               "event_type": "delivery.delivered", "subject_id": "ord_1",
               "headers": {"X-Lastmile-Signature": signature_header(
                   "whsec_test", 1_800_000_000, body.encode())},
               "body": body, "created_at": "2027-01-15T08:00:00Z"}
    good = _run_step(*_at_webhook(_captures(httpx.Response(200, json={"captures": [capture]}))))
    assert (good.status, good.detail) == ("pass", "capture cap_1 signed and verified")
    forged = dict(capture, headers={"X-Lastmile-Signature": "t=1800000000,v1=00"})
    bad = _run_step(*_at_webhook(_captures(httpx.Response(200, json={"captures": [forged]}))))
    assert bad.status == "fail" and "does not verify" in bad.detail


def test_the_webhook_step_skips_without_the_sandbox_and_fails_when_nothing_came():
    missing = _run_step(*_at_webhook(_captures(httpx.Response(
        404, json={"code": "not_found", "detail": "Not Found"}))))
    assert (missing.status, missing.detail) == ("skip", "skipped: sandbox captures not available")
    empty = _run_step(*_at_webhook(_captures(httpx.Response(200, json={"captures": []}))))
    assert empty.status == "fail" and "no captured delivery.delivered webhook" in empty.detail
