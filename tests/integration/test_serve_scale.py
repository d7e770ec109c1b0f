"""``lastmile serve --profile scale --workers 2`` for real: two API processes on
PostgreSQL (a database of this test's own), Redis (a prefix of its own) and NATS,
orders placed through them, both processes answering, one key sent to both, a worker
killed with SIGKILL and replaced, and a graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

import databases
import lastmile
from databases import fresh_database, postgres_available
from lastmile.api.factory import WORKER_HEADER
from lastmile.app import queries
from lastmile.app.auth import issue_api_key
from lastmile.bootstrap import build
from lastmile.settings import Settings
from lastmile.sim.seed import seed_demo

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.nats]

REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"
READY_S = 120  # two interpreters importing numpy, scipy and OR-Tools on a busy machine
STOP_S = 40  # the server's graceful shutdown is bounded at 20 s


def _skip_without_servers() -> None:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis server answers on 127.0.0.1:6379")
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=0.5).close()
    except OSError:
        pytest.skip("no NATS server answers on 127.0.0.1:4222")


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database, dropped afterwards: the server's processes own their connections."""
    _skip_without_servers()
    with fresh_database("test") as url:
        yield url


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with databases.redis_prefix("serve") as (_, prefix):
        yield prefix


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _start(tmp_path: Path, database_url: str, prefix: str) -> Server:
    port = _free_port()
    tag = uuid.uuid4().hex[:10]  # a stream and subjects of this test's own (tests run in parallel)
    env = {**os.environ, "LASTMILE_DATABASE_URL": database_url, "LASTMILE_REDIS_URL": REDIS_URL,
           "LASTMILE_REDIS_PREFIX": prefix, "LASTMILE_NATS_URL": NATS_URL,
           "LASTMILE_NATS_STREAM": f"SERVE_{tag}", "LASTMILE_NATS_PREFIX": f"serve{tag}",
           "PYTHONPATH": str(Path(lastmile.__file__).parents[1])}
    env.pop("LASTMILE_PROFILE", None)
    env.pop("LASTMILE_WORKERS", None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lastmile.cli", "serve", "--profile", "scale", "--workers",
             "2", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(proc=proc, base=f"http://127.0.0.1:{port}", log=log)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"server exited with {server.proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"server not ready in {READY_S} s:\n{server.output()}")


@pytest.fixture
def server(tmp_path: Path, database: str, redis_prefix: str) -> Iterator[tuple[Server, dict]]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database)
    container = build(settings)  # migrates; the server's parent finds the schema current
    try:
        seed = seed_demo(container.services, seed=5, merchants=2, consumers=3, couriers=1)
        merchant = queries.get_merchant(container.services, seed.merchant_ids[0])
        world = {
            "merchant_id": merchant.id, "item_id": merchant.menu[0].id,
            "keys": [issue_api_key(container.services, role="consumer", subject_id=c)[1]
                     for c in seed.consumer_ids],
        }
    finally:
        container.close()
    srv = _start(tmp_path, database, redis_prefix)
    try:
        _wait_ready(srv)
        yield srv, world
    finally:
        if srv.proc.poll() is None:
            os.killpg(srv.proc.pid, signal.SIGKILL)  # its own session: the parent and workers
            srv.proc.wait(timeout=10)


def _place(server: Server, world: dict, *, consumer: int, key: str) -> httpx.Response:
    body = {"merchant_id": world["merchant_id"],
            "items": [{"item_id": world["item_id"], "quantity": 1}],
            "dropoff": {"lat": 37.445, "lng": -122.15}}
    # a new connection per request: the kernel hands each to either process
    return httpx.post(f"{server.base}/v1/consumer/orders", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {world['keys'][consumer]}",
                               "Idempotency-Key": key})


def _orders(database: str) -> set[str]:
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        ids = {row[0] for row in conn.execute(sa.text("select id from orders"))}
    engine.dispose()
    return ids


def test_two_api_processes_share_orders_and_keys_outlive_a_kill_and_stop_on_sigterm(
        server, database):
    srv, world = server
    with ThreadPoolExecutor(4) as pool:
        placed = list(pool.map(lambda i: _place(srv, world, consumer=i % 3, key=f"k{i}"),
                               range(24)))
    assert [r.status_code for r in placed] == [201] * 24, placed[0].text
    pids = {r.headers[WORKER_HEADER] for r in placed}
    assert len(pids) == 2, f"one process answered every order: {pids}"
    assert str(srv.proc.pid) not in pids  # the parent supervises; workers answer

    # one key sent six times at once, to both processes: one order, five replays of it
    with ThreadPoolExecutor(6) as pool:
        dupes = list(pool.map(lambda _: _place(srv, world, consumer=0, key="once"), range(6)))
    assert sorted(r.status_code for r in dupes) == [200] * 5 + [201]
    assert len({r.json()["id"] for r in dupes}) == 1
    assert _orders(database) == {r.json()["id"] for r in placed + dupes}

    # kill -9 one worker: the survivor keeps answering, the supervisor starts a replacement
    killed = int(sorted(pids)[0])
    os.kill(killed, signal.SIGKILL)
    after: set[str] = set()
    deadline = time.monotonic() + READY_S
    n = 0
    while not after - pids and time.monotonic() < deadline:
        r = _place(srv, world, consumer=1, key=f"after-kill-{n}")
        assert r.status_code == 201, r.text
        after.add(r.headers[WORKER_HEADER])
        n += 1
        time.sleep(0.2)
    assert str(killed) not in after
    assert after - pids, f"no replacement worker answered within {READY_S} s: {after}"
    ids = {r.json()["id"] for r in placed + dupes}
    assert len(_orders(database) - ids) == n  # every order placed around the kill, once

    # SIGTERM while orders are in flight: the server stops by itself, and every order
    # it acknowledged is in the database
    acknowledged: list[str] = []

    def keep_placing(i: int) -> None:
        for n in range(200):
            try:
                r = _place(srv, world, consumer=i, key=f"late-{i}-{n}")
            except httpx.TransportError:
                return  # refused or cut once the server is going: never acknowledged
            assert r.status_code in (201, 503), r.text
            if r.status_code == 201:
                acknowledged.append(r.json()["id"])

    with ThreadPoolExecutor(3) as pool:
        running = [pool.submit(keep_placing, i) for i in range(3)]
        time.sleep(1.0)
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=STOP_S) == 0, srv.output()
        for f in running:
            f.result(timeout=STOP_S)
    assert acknowledged and set(acknowledged) <= _orders(database)
