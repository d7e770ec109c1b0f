"""What the HTTP benchmarks share: a real `lastmile serve` process on loopback, keys,
percentiles and a tally of error answers by status and code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
LASTMILE = [sys.executable, "-m", "lastmile.cli"]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(LASTMILE + args, env=env, check=True, capture_output=True, text=True)
    return out.stdout


@dataclass(frozen=True, slots=True)
class Seeded:
    """The demo city ``lastmile seed`` made, with one key per person of the roles asked."""

    consumer_ids: list[str]
    merchant_ids: list[str]
    merchant_items: list[str]  # the first menu item of each merchant, in merchant order
    courier_ids: list[str]
    keys: dict[str, list[str]]  # role -> keys, in the order of that role's ids


def seed_city(env: dict[str, str], *, consumers: int, merchants: int, couriers: int,
              key_roles: Sequence[str]) -> Seeded:
    """Seed the demo city through the CLI, read its ids back and issue keys for
    ``key_roles`` (consumer, merchant, courier)."""
    run_cli(["seed", "--consumers", str(consumers), "--merchants", str(merchants),
             "--couriers", str(couriers)], env)
    engine = sa.create_engine(engine_url(env))
    with engine.connect() as conn:
        consumer_ids = [r[0] for r in conn.execute(sa.text("select id from consumers order by id"))]
        rows = conn.execute(sa.text("select id, menu from merchants order by id")).all()
        courier_ids = [r[0] for r in conn.execute(sa.text("select id from couriers order by id"))]
    engine.dispose()
    merchant_ids = [r[0] for r in rows]
    items = [(json.loads(m) if isinstance(m, str) else m)[0]["id"] for _, m in rows]
    ids = {"consumer": consumer_ids, "merchant": merchant_ids, "courier": courier_ids}
    return Seeded(consumer_ids=consumer_ids, merchant_ids=merchant_ids, merchant_items=items,
                  courier_ids=courier_ids,
                  keys=issue_keys({role: ids[role] for role in key_roles}, env))


def issue_keys(subjects: dict[str, Sequence[str]], env: dict[str, str]) -> dict[str, list[str]]:
    """One key per subject id, by role (``{"courier": [ids]}`` -> ``{"courier": [keys]}``),
    issued in this process with one migration check (a CLI call per key costs ~1 s)."""
    from lastmile.app.auth import issue_api_key
    from lastmile.bootstrap import build
    from lastmile.settings import Settings

    container = build(Settings.from_env(env))
    try:
        return {role: [issue_api_key(container.services, role=role, subject_id=s)[1]
                       for s in ids] for role, ids in subjects.items()}
    finally:
        container.close()


def engine_url(env: dict[str, str]) -> str:
    return env.get("LASTMILE_DATABASE_URL") or (
        f"sqlite:///{env['LASTMILE_DATA_DIR']}/lastmile.sqlite")


@contextmanager
def database(kind: str, data_dir: str) -> Iterator[dict[str, str]]:
    """An environment for `lastmile` on a fresh SQLite file or a fresh PostgreSQL schema."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "LASTMILE_DATA_DIR": data_dir,
           # A bench drives many users' load through a few keys: per-client rate limits
           # (docs/overload.md) would measure the limiter, not the platform.
           "LASTMILE_RATE_LIMIT_CRITICAL": "", "LASTMILE_RATE_LIMIT_NORMAL": "",
           "LASTMILE_RATE_LIMIT_BROWSE": ""}
    if kind != "postgresql":
        yield env
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    env["LASTMILE_DATABASE_URL"] = f"{PG_URL}?options=-csearch_path%3D{schema}"
    try:
        yield env
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
        admin.dispose()


@dataclass(frozen=True, slots=True)
class Server:
    base: str  # http://127.0.0.1:<port>
    port: int
    pid: int  # the `lastmile serve` process (its API workers are its children)


@contextmanager
def server(env: dict[str, str], extra_args: Sequence[str] = (), *,
           ready_within_s: float = 120.0) -> Iterator[Server]:
    """Run `lastmile serve` (with ``extra_args``, e.g. ``--dispatch-every 1`` or
    ``--profile scale --workers 2``) on a free port until the block ends, whatever happened.
    Its log (a JSON access line per request) goes to a temporary file: a pipe nobody reads
    fills up and blocks the server mid-run; the file's tail is in the error when the server
    does not start."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(LASTMILE + ["serve", "--port", str(port), *extra_args],
                                env=env, stdout=subprocess.DEVNULL, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + ready_within_s
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"lastmile serve did not start: {tail}")
                time.sleep(0.2)
            yield Server(base=base, port=port, pid=proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile of sorted values (nearest rank, rounded to 0.01); None when empty
    (NaN is not JSON)."""
    if not sorted_values:
        return None
    return round(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))], 2)


def error_key(status: int, body: bytes) -> str:
    """``"409 offer_expired"`` from a problem+json answer; the bare status without a code."""
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        code = None
    return f"{status} {code}" if isinstance(code, str) else str(status)


class Tally:
    """Thread-safe counts of error answers (``error_key``) and transport failures."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def answer(self, response: httpx.Response) -> bool:
        """True for a 2xx answer; anything else is counted by status and code."""
        if response.is_success:
            return True
        self.add(error_key(response.status_code, response.content))
        return False

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def summary(self) -> dict[str, object]:
        """``{"errors": total, "errors_by": {key: count}}``, keys sorted by count."""
        with self._lock:
            by = dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        return {"errors": sum(by.values()), "errors_by": by}
