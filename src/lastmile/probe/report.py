"""What a probe run says: a table for people, one JSON line for machines, and a Prometheus
textfile (node_exporter's textfile collector style) for the operator's alerting."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from rich.table import Table

from lastmile.probe.journey import PASS, SKIP, Step

_STYLE = {PASS: "green", SKIP: "yellow", "fail": "red", "not_run": "dim"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    tenant: str
    base_url: str
    steps: tuple[Step, ...]
    total_ms: float
    finished_at: float  # epoch seconds
    allow_skips: bool = False

    @property
    def ok(self) -> bool:
        """Every step passed (a skipped one counts as passed only with ``allow_skips``)."""
        allowed = {PASS, SKIP} if self.allow_skips else {PASS}
        return bool(self.steps) and all(s.status in allowed for s in self.steps)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "tenant": self.tenant, "base_url": self.base_url,
                "steps": [s.as_json() for s in self.steps], "total_ms": round(self.total_ms, 1),
                "finished_at": self.finished_at}

    def json_line(self) -> str:
        return json.dumps(self.as_json(), separators=(",", ":"), sort_keys=False)


def table(result: ProbeResult) -> Table:
    verdict = "[green]PASS[/green]" if result.ok else "[red]FAIL[/red]"
    t = Table(title=f"lastmile probe {result.tenant} @ {result.base_url}: {verdict} in "
                    f"{result.total_ms / 1000:.1f} s")
    for col, justify in (("step", "left"), ("result", "left"), ("ms", "right"),
                         ("detail", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in result.steps:
        style = _STYLE.get(s.status, "")
        t.add_row(s.name, f"[{style}]{s.status}[/{style}]", f"{s.latency_ms:.0f}", s.detail)
    return t


def write_metrics(path: Path, result: ProbeResult) -> None:
    """The run as gauges in Prometheus text format, written atomically (a temporary file
    renamed over ``path``), so node_exporter's textfile collector never reads half a file."""
    registry = CollectorRegistry()
    labels = ("step", "tenant")
    ok = Gauge("lastmile_probe_step_ok", "1 when the probe step passed, else 0 (skipped "
               "and not run are 0)", labels, registry=registry)
    latency = Gauge("lastmile_probe_step_latency_seconds", "How long the probe step took",
                    labels, registry=registry)
    for s in result.steps:
        ok.labels(step=s.name, tenant=result.tenant).set(1 if s.ok else 0)
        latency.labels(step=s.name, tenant=result.tenant).set(s.latency_ms / 1000)
    Gauge("lastmile_probe_ok", "1 when every step of the last probe run passed",
          ("tenant",), registry=registry).labels(tenant=result.tenant).set(int(result.ok))
    Gauge("lastmile_probe_duration_seconds", "How long the last probe run took",
          ("tenant",), registry=registry).labels(tenant=result.tenant).set(
        result.total_ms / 1000)
    Gauge("lastmile_probe_last_run_timestamp_seconds", "When the last probe run finished "
          "(alert when it is old: the schedule stopped)", ("tenant",),
          registry=registry).labels(tenant=result.tenant).set(result.finished_at)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def summary(steps: Sequence[Step]) -> str:
    """``"15 passed, 1 skipped, 1 failed"``: for the one-line verdict."""
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    return ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items()))
