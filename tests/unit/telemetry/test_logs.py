"""Structured logs: fields, formats, and secrets masked in one place."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from lastmile.adapters.telemetry.logs import configure_logging, redact, request_id_var
from lastmile.adapters.telemetry.tracing import configure_tracing, tracer
from lastmile.settings import Settings

KEY = "lm_con_" + "ab12" * 12


@pytest.mark.parametrize(("text", "secret"), [
    (f"Authorization: Bearer {KEY}", KEY),
    (f"{{'authorization': 'Bearer {KEY}'}}", KEY),
    (f"x-api-key={KEY}", KEY),
    (f"key {KEY} rejected", KEY[7:]),
    ("GET /v1/consumer/orders/o1/stream?token=lmst_eyJyIjoiY29uIn0.c2ln HTTP/1.1", "eyJyIjoi"),
    ("subprotocols ['bearer.lmst_abc.def']", "abc.def"),
    ("cookie: session=s3cr3t-cookie; theme=dark", "s3cr3t-cookie"),
    ("postgresql://lastmile:hunter2@db:5432/prod", "hunter2"),
    ("redis://:p4ss@redis:6379/0", "p4ss"),
    ('{"pin": "4821", "photo_ref": "p1"}', "4821"),
    ("pin=4821", "4821"),
    ("password: 'correct horse'", "correct"),
    ("webhook secret whsec_0123456789abcdef", "0123456789abcdef"),
    ("GET /track/trk_7f3a9b2c.json 200", "trk_7f3a9b2c"),
])
def test_secrets_are_masked(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "***" in redact(text)


def test_ordinary_text_is_left_alone() -> None:
    line = "GET /v1/consumer/orders/{order_id} 200 in 3.2 ms for ord_000042"
    assert redact(line) == line


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_a_json_line_carries_the_request_and_trace_ids_and_extras(lines: io.StringIO) -> None:
    configure_logging("json", stream=lines)
    configure_tracing("memory")
    token = request_id_var.set("req-1")
    try:
        with tracer().start_as_current_span("work") as span:
            logging.getLogger("lastmile.x").warning("moved %s", "c1", extra={"route": "/r"})
        ctx = span.get_span_context()
    finally:
        request_id_var.reset(token)
        configure_tracing("off")
    line = json.loads(lines.getvalue())
    assert line["message"] == "moved c1" and line["level"] == "WARNING"
    assert line["logger"] == "lastmile.x" and line["route"] == "/r"
    assert line["request_id"] == "req-1"
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")


def test_outside_a_request_the_ids_are_null(lines: io.StringIO) -> None:
    configure_logging("json", stream=lines)
    logging.getLogger("lastmile.x").info("tick")
    line = json.loads(lines.getvalue())
    assert (line["request_id"], line["trace_id"], line["span_id"]) == (None, None, None)


def test_a_traceback_is_masked_and_kept_in_one_json_line(lines: io.StringIO) -> None:
    configure_logging("json", stream=lines)
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError:
        logging.getLogger("lastmile.x").exception("failed")
    (raw,) = lines.getvalue().splitlines()
    line = json.loads(raw)
    assert "ValueError: bad key lm_con_***" in line["exception"]
    assert KEY not in raw


def test_text_format_has_the_same_fields_on_one_line(lines: io.StringIO) -> None:
    configure_logging("text", stream=lines)
    token = request_id_var.set("req-9")
    try:
        logging.getLogger("lastmile.access").info("GET /healthz 200", extra={"status": 200})
    finally:
        request_id_var.reset(token)
    (line,) = lines.getvalue().splitlines()
    assert ("INFO lastmile.access [request_id=req-9 tenant=lastmile:default] GET /healthz 200 "
            "status=200") in line


def test_formats_and_tracing_modes_are_checked_where_they_are_read() -> None:
    with pytest.raises(ValueError, match="LASTMILE_LOG_FORMAT must be one of json, text"):
        Settings.from_env({"LASTMILE_LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="LASTMILE_TRACING must be one of off, console, memory"):
        Settings.from_env({"LASTMILE_TRACING": "jaeger"})
    s = Settings.from_env({"LASTMILE_LOG_FORMAT": "text", "LASTMILE_TRACING": "console"})
    assert (s.log_format, s.tracing) == ("text", "console")
    assert (Settings.from_env({}).log_format, Settings.from_env({}).tracing) == ("json", "off")
    with pytest.raises(ValueError, match="LASTMILE_LOG_FORMAT"):
        configure_logging("xml")


def test_the_process_setup_applies_format_level_and_tracing(lines: io.StringIO) -> None:
    from lastmile.adapters.telemetry.setup import configure_process
    from lastmile.adapters.telemetry.tracing import current_ids

    configure_process(Settings.from_env({"LASTMILE_LOG_FORMAT": "text",
                                         "LASTMILE_LOG_LEVEL": "warning",
                                         "LASTMILE_TRACING": "memory"}))
    try:
        root = logging.getLogger()
        assert root.level == logging.WARNING
        (handler,) = root.handlers
        handler.setStream(lines)  # type: ignore[attr-defined]
        logging.getLogger("lastmile.access").info("GET /healthz 200")
        with tracer().start_as_current_span("s"):
            assert current_ids() is not None
            logging.getLogger("lastmile.x").warning("kept")
    finally:
        configure_tracing("off")
    (line,) = lines.getvalue().splitlines()
    assert " WARNING lastmile.x [trace_id=" in line and line.endswith(" kept")
    with pytest.raises(ValueError, match="LASTMILE_LOG_LEVEL must be one of"):
        Settings.from_env({"LASTMILE_LOG_LEVEL": "loud"})
