"""Telemetry for a process, from settings: called once by ``lastmile serve`` and by each
worker command (dispatcher, relay) at start, never at import or by ``bootstrap.build``
(tests and the simulator keep pytest's and rich's logging)."""

from __future__ import annotations

import logging

from lastmile.adapters.telemetry.logs import configure_logging
from lastmile.adapters.telemetry.tracing import configure_tracing
from lastmile.settings import Settings


def configure_process(settings: Settings) -> None:
    """Structured, redacted logs in ``LASTMILE_LOG_FORMAT`` from ``LASTMILE_LOG_LEVEL`` up,
    and the tracer provider of ``LASTMILE_TRACING``."""
    configure_logging(settings.log_format, level=logging.getLevelNamesMapping()[
        settings.log_level.upper()])
    configure_tracing(settings.tracing)
