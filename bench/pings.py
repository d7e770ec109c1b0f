"""Location pings ingested per second through the HTTP API: single and batched,
embedded (in-memory live store) and Redis (GEO) profiles, with p50/p99 latency.

Each courier goes on shift from its main device, then a client thread per courier
uploads pings (a slow random walk, client time increasing) to a real `lastmile serve`
on loopback for a bounded time. The uploads are a realistic mix, not a clean stream
(``MIX``, shares stated there): a second phone on some couriers' accounts, retried
uploads (duplicates), pings buffered offline that arrive late (out of order), indoor
fixes (low accuracy), uploads from a banned device, and a few uploads carrying an
unusable ping (out of range or too old) that the API refuses whole (422).

``pings_per_s`` counts accepted pings (those that moved a courier) per second;
``sent_per_s`` every ping sent; ``by_reason`` the classifier's verdicts; ``errors_by``
the refused uploads by status and code. ``p50_ms`` / ``p99_ms`` are per upload
answered 200; ``*_per_ping`` divide each upload's latency by its pings. The last line
is ``{"single_per_s", "batch_per_s", "redis_batch_per_s", "p99_ms", ...}`` (``p99_ms``
is the single path's; ``batch_p99_ms`` and ``batch_p99_ms_per_ping`` the batched one's).

    .venv/bin/python bench/pings.py                 # 3 runs x 6 s, 8 couriers (~1 min)
    .venv/bin/python bench/pings.py --quick         # 3 runs x 2 s, 4 couriers
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import redis
import sqlalchemy as sa
from harness import Tally, database, engine_url, issue_keys, percentile, run_cli, server

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mix:
    """What the uploads hold besides clean main-device pings (shares, stated here)."""

    # DoorDash ("Identifying the main active device for dashers using multiple devices"):
    # about 10 % of Dashers use more than one device in a shift. That phone uploads as
    # often as the main one; its pings are classified `not_main_device`.
    second_phone_couriers: float = 0.10
    # An upload whose answer was lost on a flaky network is sent again whole: its last
    # ping comes back `duplicate`, the earlier ones `out_of_order`.
    retried_uploads: float = 0.02
    # A ping buffered while offline arrives in the device's next upload, after newer
    # ones: `out_of_order`.
    late_pings: float = 0.03
    # An indoor fix (inside a restaurant) worse than 150 m: `low_accuracy`.
    low_accuracy_pings: float = 0.02
    # An upload from a banned device still signed in to the account (a family member's
    # phone, an ex-courier's device): every ping `banned_device`.
    banned_uploads: float = 0.01
    # An upload with one unusable ping (half latitude 91, half taken two hours ago): the
    # API validates the whole upload first and refuses it (422, nothing stored).
    invalid_uploads: float = 0.005


MIX = Mix()


@dataclass(slots=True, kw_only=True)
class Upload:
    kind: str  # main, second, banned, retry, invalid
    device_id: str
    pings: list[dict[str, Any]]


@dataclass(slots=True, kw_only=True)
class Feed:
    """One courier's devices and what they upload next; ``clock`` gives epoch seconds."""

    index: int
    rng: random.Random
    mix: Mix = MIX
    clock: Callable[[], float] = time.time
    second_phone: bool = False
    lat: float = 37.44
    lng: float = -122.14
    _last_ts: dict[str, float] = field(default_factory=dict)
    _pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _previous: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def main_device(self) -> str:
        return f"main-{self.index}"

    @property
    def banned_device(self) -> str:
        return f"banned-{self.index}"

    def _fresh(self, device: str) -> dict[str, Any]:
        ts = max(self._last_ts.get(device, 0.0) + 0.001, self.clock())
        self._last_ts[device] = ts
        self.lat += self.rng.uniform(-2e-5, 2e-5)
        self.lng += self.rng.uniform(-2e-5, 2e-5)
        low = self.rng.random() < self.mix.low_accuracy_pings
        return {"device_id": device, "lat": self.lat, "lng": self.lng,
                "accuracy_m": 250.0 if low else 10.0, "client_ts": ts, "speed_mps": 4.0}

    def _device(self) -> tuple[str, str]:
        if self.rng.random() < self.mix.banned_uploads:
            return "banned", self.banned_device
        if self.second_phone and self.rng.random() < 0.5:
            return "second", f"phone2-{self.index}"
        return "main", self.main_device

    def next_upload(self, batch: int) -> Upload:
        kind, device = self._device()
        if device in self._previous and self.rng.random() < self.mix.retried_uploads:
            return Upload(kind="retry", device_id=device, pings=list(self._previous[device]))
        pending = self._pending.setdefault(device, [])
        pings, pending[:] = pending[:batch], pending[batch:]
        while len(pings) < batch:
            ping = self._fresh(device)
            if kind != "banned" and self.rng.random() < self.mix.late_pings:
                pending.append(ping)  # held back: goes out in this device's next upload
            else:
                pings.append(ping)
        if self.rng.random() < self.mix.invalid_uploads:
            kind, pings = "invalid", self._spoil(pings)
        self._previous[device] = pings
        return Upload(kind=kind, device_id=device, pings=pings)

    def _spoil(self, pings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        i = self.rng.randrange(len(pings))
        bad = dict(pings[i])
        if self.rng.random() < 0.5:
            bad["lat"] = 91.0
        else:
            bad["client_ts"] = self.clock() - 7200.0
        return [*pings[:i], bad, *pings[i + 1:]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """One upload as the client saw it."""

    kind: str
    pings: int
    ok: bool
    ms: float
    accepted: int = 0
    reasons: tuple[str, ...] = ()


def summarise(answers: Sequence[Answer], wall_s: float, tally: Tally, *, batch: int,
              couriers: int) -> dict[str, Any]:
    """Throughput, latency of the uploads answered 200 (per upload and per ping),
    verdicts by reason, refused uploads by status and code, and what was sent."""
    ok = [a for a in answers if a.ok]
    per_upload = sorted(a.ms for a in ok)
    per_ping = sorted(a.ms / a.pings for a in ok)
    accepted = sum(a.accepted for a in ok)
    sent = sum(a.pings for a in answers)
    reasons = Counter(r for a in ok for r in a.reasons)
    wall = max(wall_s, 1e-9)
    return {
        "pings_per_s": round(accepted / wall, 1), "requests": len(answers),
        "accepted": accepted, "p50_ms": percentile(per_upload, 0.5),
        "p99_ms": percentile(per_upload, 0.99), "batch": batch, "couriers": couriers,
        "sent": sent, "sent_per_s": round(sent / wall, 1),
        "accepted_share": round(accepted / sent, 4) if sent else None,
        "p50_ms_per_ping": percentile(per_ping, 0.5), "p99_ms_per_ping": percentile(per_ping, 0.99),
        "by_reason": dict(sorted(reasons.items())),
        "uploads_by_kind": dict(sorted(Counter(a.kind for a in answers).items())),
        **tally.summary(),
        "wall_s": round(wall_s, 2),
    }


def _couriers(env: dict[str, str], n: int) -> tuple[list[str], str]:
    run_cli(["seed", "--couriers", str(n), "--merchants", "2", "--consumers", "1"], env)
    engine = sa.create_engine(engine_url(env))
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("select id from couriers order by id"))]
    engine.dispose()
    keys = issue_keys({"courier": ids, "ops": ["bench"]}, env)
    return keys["courier"], keys["ops"][0]


def _sender(base: str, key: str, feed: Feed, batch: int, stop_at: float,
            out: list[Answer], tally: Tally, lock: threading.Lock) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post("/v1/courier/shift/start", json={"device_id": feed.main_device,
                                                     "duration_s": 7200},
                    headers=headers).raise_for_status()
        while time.monotonic() < stop_at:
            up = feed.next_upload(batch)
            t0 = time.perf_counter()
            try:
                if batch == 1:
                    r = client.post("/v1/courier/location", json=up.pings[0], headers=headers)
                else:
                    r = client.post("/v1/courier/locations", json={"pings": up.pings},
                                    headers=headers)
            except httpx.HTTPError as exc:
                tally.add(f"transport {exc.__class__.__name__}")
                continue
            ms = (time.perf_counter() - t0) * 1000
            answer = Answer(kind=up.kind, pings=len(up.pings), ok=tally.answer(r), ms=ms)
            if answer.ok:
                body = r.json()
                answer = Answer(kind=up.kind, pings=len(up.pings), ok=True, ms=ms,
                                accepted=body["accepted"],
                                reasons=tuple(p["reason"] for p in body["pings"]))
            with lock:
                out.append(answer)


def _ban(base: str, ops_key: str, feeds: Sequence[Feed]) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        for f in feeds:
            client.post(f"/v1/ops/devices/{f.banned_device}/ban",
                        json={"reason": "bench: banned device on the account"},
                        headers={"Authorization": f"Bearer {ops_key}"}).raise_for_status()


def _run(env: dict[str, str], couriers: int, batch: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lastmile-pings-") as tmp:
        env = {**env, "LASTMILE_DATA_DIR": tmp}
        keys, ops_key = _couriers(env, couriers)
        # Every tenth courier (at least one) carries a second phone: MIX.second_phone_couriers.
        every = max(1, round(1 / MIX.second_phone_couriers))
        feeds = [Feed(index=i, rng=random.Random(i), second_phone=i % every == 0,
                      lat=37.44 + random.Random(-i).uniform(-0.03, 0.03),
                      lng=-122.14 + random.Random(-i).uniform(-0.03, 0.03))
                 for i in range(len(keys))]
        out: list[Answer] = []
        tally = Tally()
        lock = threading.Lock()
        with server(env) as srv:
            base = srv.base
            _ban(base, ops_key, feeds)
            stop_at = time.monotonic() + seconds
            threads = [threading.Thread(target=_sender, args=(base, k, f, batch, stop_at, out,
                                                              tally, lock))
                       for k, f in zip(keys, feeds, strict=True)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
    return summarise(out, wall, tally, batch=batch, couriers=couriers)


def final_line(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The last line: the historical four keys first, then the batched path's tail."""
    single, batch, red = results["single"], results["batch"], results["redis"]
    return {
        "single_per_s": single["pings_per_s"], "batch_per_s": batch["pings_per_s"],
        "redis_batch_per_s": red["pings_per_s"], "p99_ms": single["p99_ms"],
        "batch_p50_ms": batch["p50_ms"], "batch_p99_ms": batch["p99_ms"],
        "batch_p99_ms_per_ping": batch["p99_ms_per_ping"],
        "redis_batch_p99_ms": red["p99_ms"], "redis_batch_p99_ms_per_ping": red["p99_ms_per_ping"],
        "batch_sent_per_s": batch["sent_per_s"], "batch_accepted_share": batch["accepted_share"],
        "errors": {name: r["errors"] for name, r in results.items()},
        "mix": asdict(MIX),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="load time per run")
    parser.add_argument("--couriers", type=int, default=8, help="concurrent couriers (threads)")
    parser.add_argument("--batch", type=int, default=50, help="pings per batched request")
    parser.add_argument("--quick", action="store_true", help="2 s per run, 4 couriers")
    args = parser.parse_args()
    seconds, couriers = (2.0, 4) if args.quick else (args.seconds, args.couriers)
    results = {}
    with tempfile.TemporaryDirectory() as tmp, database("sqlite", tmp) as env:
        results["single"] = _run(env, couriers, 1, seconds)
        print(json.dumps({"profile": "embedded", **results["single"]}), flush=True)
        results["batch"] = _run(env, couriers, args.batch, seconds)
        print(json.dumps({"profile": "embedded", **results["batch"]}), flush=True)
        prefix = f"bench:{uuid.uuid4().hex[:8]}:"
        redis_env = {**env, "LASTMILE_REDIS_URL": REDIS_URL, "LASTMILE_REDIS_PREFIX": prefix}
        try:
            results["redis"] = _run(redis_env, couriers, args.batch, seconds)
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
        print(json.dumps({"profile": "redis", **results["redis"]}), flush=True)
    print(json.dumps(final_line(results)))


if __name__ == "__main__":
    main()
