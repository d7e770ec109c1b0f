"""A consumer process for the kill test (tests/service/test_eventlog_kill.py).

``python eventlog_consumer.py DATA_DIR STREAM PREFIX NAME``: one durable JetStream subscriber
``NAME`` whose handler takes ~10 ms and appends its effect through the inbox
(``eventlog_harness.effect_handler``). Exits by itself after two minutes at the latest.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from eventlog_harness import NATS_URL, POLICY, effect_handler  # noqa: E402

from lastmile.adapters.bus.jetstream import JetStreamBus  # noqa: E402
from lastmile.adapters.bus.jetstream_wire import JetStreamConfig  # noqa: E402
from lastmile.bootstrap import build  # noqa: E402
from lastmile.settings import Settings  # noqa: E402

LIFETIME_S = 120.0


def main(data_dir: str, stream: str, prefix: str, name: str) -> None:
    container = build(Settings(data_dir=Path(data_dir)), run_migrations=False)
    bus = JetStreamBus(JetStreamConfig(url=NATS_URL, stream=stream, prefix=prefix,
                                       fetch_batch=20, fetch_wait_s=0.3, ack_wait_s=2.0))
    bus.subscribe("test.happened",
                  effect_handler(container.services, name,
                                 fail=lambda e: bool(time.sleep(0.01))), durable=name)
    bus.start_consumers(container.services, POLICY)
    time.sleep(LIFETIME_S)
    bus.close()
    container.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
