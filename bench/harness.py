"""What the HTTP benchmarks share: a real `lastmile serve` process on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
LASTMILE = [sys.executable, "-m", "lastmile.cli"]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(LASTMILE + args, env=env, check=True, capture_output=True, text=True)
    return out.stdout


def issue_key(role: str, subject_id: str, env: dict[str, str]) -> str:
    return run_cli(["keys", "issue", "--role", role, "--id", subject_id], env).strip().splitlines()[-1]


def engine_url(env: dict[str, str]) -> str:
    return env.get("LASTMILE_DATABASE_URL") or (
        f"sqlite:///{env['LASTMILE_DATA_DIR']}/lastmile.sqlite")


@contextmanager
def database(kind: str, data_dir: str) -> Iterator[dict[str, str]]:
    """An environment for `lastmile` on a fresh SQLite file or a fresh PostgreSQL schema."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "LASTMILE_DATA_DIR": data_dir}
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


@contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    """Run `lastmile serve` until the block ends; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(LASTMILE + ["serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return round(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))], 2)
