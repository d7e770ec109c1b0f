"""A JetStream consumer killed with SIGKILL in the middle of a batch resumes from its last
acknowledgement when restarted: every event's effect applied exactly once, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eventlog_harness import close_harness, effects, make_harness, nats_available, wait_for
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from lastmile.adapters.bus.jetstream import JetStreamBus

CHILD = Path(__file__).parent / "eventlog_consumer.py"
NAME = "killed"
STARTUP_S = 60  # a consumer process's start, bounded only against a hang


def _consumer(bus: JetStreamBus) -> object | None:
    async def info(js: JetStreamContext) -> object | None:
        try:
            return await js.consumer_info(bus.config.stream, NAME)
        except NotFoundError:
            return None
    return bus.call(info)


def _start(tmp_path: Path, bus: JetStreamBus) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, str(CHILD), str(tmp_path), bus.config.stream,
                             bus.config.prefix, NAME], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.nats
@pytest.mark.slow
def test_a_consumer_killed_mid_batch_resumes_and_applies_every_effect_once(tmp_path: Path):
    if reason := nats_available():
        pytest.skip(reason)
    h = make_harness("nats", tmp_path)
    assert isinstance(h.bus, JetStreamBus)
    children: list[subprocess.Popen[bytes]] = []
    try:
        children.append(_start(tmp_path, h.bus))
        # Its start (an interpreter importing the platform) is not what this test bounds: on
        # a loaded machine (the suite on parallel workers) it took more than 20 s.
        wait_for(lambda: _consumer(h.bus) is not None or children[0].poll() is not None,
                 STARTUP_S)
        assert children[0].poll() is None, "the consumer process exited at start"
        ids = h.record([f"s{i}" for i in range(10)], 30)  # 300 events
        h.relay.drain()

        def done() -> int:
            return sum(effects(h.services, NAME, ids).values())

        wait_for(lambda: done() >= 60, 30)
        children[0].send_signal(signal.SIGKILL)
        children[0].wait(10)
        at_kill = done()
        info = _consumer(h.bus)
        assert at_kill < len(ids)
        assert info.num_ack_pending > 0  # type: ignore[attr-defined]  # killed mid-batch

        children.append(_start(tmp_path, h.bus))
        deadline = time.monotonic() + 60
        while done() < len(ids):
            assert time.monotonic() < deadline, f"only {done()} of {len(ids)} after restart"
            time.sleep(0.2)
        assert set(effects(h.services, NAME, ids).values()) == {1}  # once each, none lost
        wait_for(lambda: _consumer(h.bus).num_ack_pending == 0, 10)  # type: ignore[union-attr]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(10)
        close_harness(h)
