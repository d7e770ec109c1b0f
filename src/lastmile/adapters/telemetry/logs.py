"""Structured logs: JSON lines (or text) with request and trace ids, secrets redacted.

``configure_logging(format)`` installs one handler on the root logger with two filters:
``RequestContext`` stamps each record with the current request id (a context variable the
HTTP middleware sets), trace/span ids and the tenant the code runs as
(``app.tenancy.current_tenant``), and ``RedactSecrets`` scrubs the finished
message, the traceback and the string extras. Redaction sits on the handler, in one place,
so every logger (ours, uvicorn's, SQLAlchemy's) goes through it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from lastmile.adapters.telemetry.tracing import current_ids
from lastmile.app.tenancy import current_tenant

LogFormat = Literal["json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "text")
request_id_var: ContextVar[str | None] = ContextVar("lastmile_request_id", default=None)

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "trace_id", "span_id", "tenant"}
_MASK = "***"
# Each pattern keeps group 1 (the name, the prefix) and masks the rest. Kept broad on
# purpose: a masked non-secret costs a debugging minute, a leaked key costs a rotation.
_SECRETS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(\blm_[a-z]{3}_)[0-9A-Za-z]+"),  # API keys (app.auth.issue_api_key)
    re.compile(r"(\blmst_)[^\s\"'&,;]+"),  # stream tokens
    re.compile(r"(\bwhsec_)[0-9A-Za-z]+"),  # webhook signing secrets
    re.compile(r"(?i)(\bbearer[ .]+)[^\s\"',;]+"),  # Authorization value, WS subprotocol
    re.compile(r"(?i)(\b(?:authorization|cookie|set-cookie|x-api-key|proxy-authorization)"
               r"[\"']?\s*[:=]\s*[\"']?)[^\"'\n]+"),
    re.compile(r"(?i)([?&;](?:token|key|api_key|apikey|pin|password|passwd|secret|sig|"
               r"signature)=)[^&\s\"']+"),
    re.compile(r"(?i)([\"']?\b(?:pin|password|passwd|secret|api_key|token)[\"']?\s*[:=]\s*"
               r"[\"']?)[^\s\"',}&]+"),
    re.compile(r"(://[^/\s:@]*:)[^@\s/]+(?=@)"),  # a password in a URL (user may be empty)
    re.compile(r"(/track/)[^\s/?\"'.]+"),  # public tracking links are bearer tokens
)

# Every pattern above needs one of these words: most lines (an access line) have none and
# cost one search instead of one substitution per pattern.
_MAY_HOLD_A_SECRET = re.compile(
    r"(?i)lm_|lmst_|whsec_|bearer|authoriz|cookie|api[-_]?key|token|key=|pin|passw|secret|"
    r"sig|://|/track/")


def redact(text: str) -> str:
    """``text`` with API keys, tokens, PINs, passwords and credential headers masked."""
    if not _MAY_HOLD_A_SECRET.search(text):
        return text
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: m.group(1) + _MASK, text)
    return text


class RequestContext(logging.Filter):
    """Adds ``request_id``, ``trace_id`` and ``span_id`` (None outside a request/span) and
    ``tenant`` (the current one; the access line brings the tenant its request ran as)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "tenant" not in vars(record):
            record.tenant = current_tenant()
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        if getattr(record, "trace_id", None) is None:
            ids = current_ids()
            record.trace_id, record.span_id = ids if ids else (None, None)
        return True


class RedactSecrets(logging.Filter):
    """Formats the message once, masks secrets in it, in the traceback and in string
    extras; the formatters then only lay the record out."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: timestamp (UTC, ISO 8601), level, logger, message, the
    request and trace ids, then the record's extras (route, status, duration_ms...)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
            "tenant": getattr(record, "tenant", None),
        }
        line.update(_fields(record))
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """A human line with the same fields: ``time level logger [request trace] message k=v``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        ids = " ".join(f"{k}={v}" for k in ("request_id", "trace_id", "tenant")
                       if (v := getattr(record, k, None)))
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        text = " ".join(p for p in (when, record.levelname, record.name,
                                    f"[{ids}]" if ids else "", record.getMessage(), extras) if p)
        return f"{text}\n{record.exc_text}" if record.exc_text else text


def configure_logging(log_format: str = "json", *, level: int = logging.INFO,
                      stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one structured, redacting handler; uvicorn's
    loggers propagate to it (their own access log is turned off by ``lastmile serve``: the
    middleware writes one line per request, with the route template instead of the raw,
    token-bearing path)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LASTMILE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)} "
                         f"(got {log_format!r})")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestContext())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Alembic announces each of its plugins at INFO on every start; its migration lines
    # ("Running upgrade ...", alembic.runtime.migration) stay.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(level, logging.WARNING))
    return handler
