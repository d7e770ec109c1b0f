"""What the fault tests share besides fixtures: the servers' addresses, a URL through a
proxy, the processes a test started, and the demo city with its keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from api_orders import City
from processes import Process, free_port

from fault_proxy import FaultProxy

PG_TARGET = ("127.0.0.1", 5432)
REDIS_TARGET = ("127.0.0.1", 6379)
NATS_TARGET = ("127.0.0.1", 4222)


def redis_available() -> str | None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"no Redis answers on 127.0.0.1:6379: {exc.__class__.__name__}"
    finally:
        client.close()
    return None


def via(url: str, proxy: FaultProxy) -> str:
    """``url`` with its host:port replaced by the proxy's."""
    scheme, rest = url.split("://", 1)
    creds, _, tail = rest.rpartition("@")
    path = tail.split("/", 1)[1] if "/" in tail else ""
    return f"{scheme}://{creds + '@' if creds else ''}{proxy.address}/{path}"


class Processes:
    """Every process a test starts; all stopped at teardown, whatever happened."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[Process] = []

    def start(self, name: str, cmd_for_port: Callable[[int], list[str]],
              env: dict[str, str]) -> Process:
        port = free_port()
        proc = Process(name, cmd_for_port(port), port, env, self.log_dir)
        self.started.append(proc)
        return proc.start()

    def stop_all(self) -> None:
        for proc in self.started:
            proc.stop()


def make_city(database_url: str, data_dir: Path, *, consumers: int, couriers: int,
              merchants: int = 12) -> City:
    """Migrate, seed the demo city and issue one key per person, in this process, straight
    to the database (not through a proxy)."""
    from lastmile.app.auth import issue_api_key
    from lastmile.bootstrap import build
    from lastmile.settings import Settings
    from lastmile.sim.seed import seed_demo

    container = build(Settings(data_dir=data_dir, database_url=database_url))
    try:
        svc = container.services
        seed = seed_demo(svc, seed=11, merchants=merchants, consumers=consumers,
                         couriers=couriers)
        with svc.uow(read_only=True) as uow:
            items = [uow.merchants.get(m).menu[0].id for m in seed.merchant_ids]

        def key(role: str, subject: str) -> str:
            return issue_api_key(svc, role=role, subject_id=subject)[1]

        return City(consumer_keys=[key("consumer", c) for c in seed.consumer_ids],
                    courier_keys=[key("courier", c) for c in seed.courier_ids],
                    merchants=[(m, key("merchant", m), i)
                               for m, i in zip(seed.merchant_ids, items, strict=True)])
    finally:
        container.close()

