"""Settings: read from the environment once, in bootstrap or the CLI, never at import."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, TypeVar, cast, get_type_hints

N = TypeVar("N", int, float)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    data_dir: Path = Path("data")
    # URLs may carry passwords: kept out of repr (use redacted_database_url for banners).
    database_url: str | None = field(default=None, repr=False)  # None = SQLite in data_dir
    redis_url: str | None = field(default=None, repr=False)  # None = in-memory live store
    nats_url: str | None = field(default=None, repr=False)  # None = in-process bus
    nats_stream: str = "LASTMILE"  # the JetStream stream and subject prefix (docs/eventlog.md)
    nats_prefix: str = "lastmile"
    # Signs page tokens and stream tokens. None: bootstrap reads (or creates) data_dir/secret_key;
    # several API processes on different hosts must share one LASTMILE_SECRET_KEY.
    secret_key: str | None = field(default=None, repr=False)
    redis_prefix: str = "lastmile:"
    # Webhook URLs on loopback/private networks are refused (SSRF guard) unless allowed,
    # e.g. for a receiver on the developer's own machine.
    webhooks_allow_private: bool = False
    relay_interval_s: float = 0.2
    # How long a relay holds the events it claimed: a killed process's claims come back after
    # this (docs/faults.md). None: RelayPolicy's default.
    relay_lease_s: float | None = None
    # How often late orders are flagged and finished shifts ended.
    housekeeping_interval_s: float = 30.0
    # "embedded" (one process; SQLite, in-process bus, memory stores unless URLs say otherwise)
    # or "scale" (PostgreSQL, Redis and NATS all required; see lastmile.profiles, docs/scaling.md).
    profile: str = "embedded"
    workers: int = 1  # API processes `lastmile serve` runs (scale profile only above 1)
    # PostgreSQL connections the whole API tier may hold; each process gets its share.
    db_max_connections: int = 80
    # Overload protection (docs/overload.md). Per-client rate limits per priority class in
    # the ``limits`` notation ("20/second", "" for none), shared in Redis when redis_url is set.
    rate_limit_critical: str = "60/second"
    rate_limit_normal: str = "30/second"
    rate_limit_browse: str = "20/second"
    rate_limit_strategy: str = "moving-window"  # or "sliding-window" (cheaper, approximate)
    # Requests in flight in one process above which a class is shed (browse first).
    shed_browse_inflight: int = 32
    shed_normal_inflight: int = 64
    shed_critical_inflight: int = 256
    # Circuit breakers around webhook receivers and notification channels.
    breaker_fail_max: int = 5
    breaker_reset_s: float = 30.0
    # LASTMILE_TRACING: off (ids made and propagated, nothing recorded), console or memory;
    # LASTMILE_LOG_FORMAT: json lines or text (adapters.telemetry, docs/observability.md).
    tracing: str = "off"
    log_format: str = "json"
    log_level: str = "info"  # LASTMILE_LOG_LEVEL; warning drops the per-request access lines
    # LASTMILE_PAY_POLICY: courier pay overrides as a JSON object (docs/pay.md), on top of
    # core.pay.DEFAULT_POLICY; checked at startup.
    pay_policy: str | None = None
    # LASTMILE_PAYMENTS: the payment processor (docs/payments.md): "builtin" (embedded,
    # approves by default) or "stripe" (needs the API key; test tenants stay on builtin).
    payments: str = "builtin"
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None  # tests: a local server answering as Stripe's API
    # LASTMILE_ETA_MODELS: the folder of ETA model files and their registry (docs/eta.md);
    # None: the pricing policy's heuristic serves every ETA, with no shadow.
    eta_models_dir: Path | None = None

    @staticmethod
    def from_env(env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        return Settings(
            data_dir=Path(e.get("LASTMILE_DATA_DIR", "data")),
            database_url=e.get("LASTMILE_DATABASE_URL") or None,
            redis_url=e.get("LASTMILE_REDIS_URL") or None,
            nats_url=e.get("LASTMILE_NATS_URL") or None,
            nats_stream=e.get("LASTMILE_NATS_STREAM") or "LASTMILE",
            nats_prefix=e.get("LASTMILE_NATS_PREFIX") or "lastmile",
            redis_prefix=e.get("LASTMILE_REDIS_PREFIX", "lastmile:"),
            secret_key=e.get("LASTMILE_SECRET_KEY") or None,
            webhooks_allow_private=e.get("LASTMILE_WEBHOOKS_ALLOW_PRIVATE", "") in ("1", "true"),
            profile=e.get("LASTMILE_PROFILE") or "embedded",
            workers=_int(e, "LASTMILE_WORKERS", 1),
            db_max_connections=_int(e, "LASTMILE_DB_MAX_CONNECTIONS", 80),
            **_overload_from_env(e),
            tracing=_choice(e, "LASTMILE_TRACING", ("off", "console", "memory"), "off"),
            log_format=_choice(e, "LASTMILE_LOG_FORMAT", ("json", "text"), "json"),
            log_level=_choice(e, "LASTMILE_LOG_LEVEL", ("debug", "info", "warning", "error"),
                              "info"),
            relay_lease_s=_number(e, "LASTMILE_RELAY_LEASE_S", float, None),
            pay_policy=e.get("LASTMILE_PAY_POLICY") or None,
            payments=_choice(e, "LASTMILE_PAYMENTS", ("builtin", "stripe"), "builtin"),
            stripe_api_key=e.get("LASTMILE_STRIPE_API_KEY") or None,
            stripe_webhook_secret=e.get("LASTMILE_STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=e.get("LASTMILE_STRIPE_API_BASE") or None,
            eta_models_dir=Path(e["LASTMILE_ETA_MODELS"]) if e.get("LASTMILE_ETA_MODELS")
            else None,
        )

    def redacted_database_url(self) -> str:
        """The URL without its password, for logs and banners."""
        url = self.database_url or f"sqlite:///{self.data_dir}/lastmile.sqlite"
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}"
        return url


def _number(env: dict[str, str], name: str, kind: type[N], default: N | None) -> N | None:
    """``name`` read as ``kind`` (absent or empty: ``default``); a malformed value is an
    error naming the variable, the one rule every numeric setting follows."""
    text = env.get(name) or ""
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise ValueError(f"{name} must be {expected} (got {text!r})") from None


def _int(env: dict[str, str], name: str, default: int) -> int:
    value = _number(env, name, int, default)
    assert value is not None  # the default is an int
    return value


class _OverloadFields(TypedDict, total=False):
    rate_limit_critical: str
    rate_limit_normal: str
    rate_limit_browse: str
    rate_limit_strategy: str
    shed_browse_inflight: int
    shed_normal_inflight: int
    shed_critical_inflight: int
    breaker_fail_max: int
    breaker_reset_s: float


def _overload_from_env(e: dict[str, str]) -> _OverloadFields:
    """The overload settings present in ``e`` (``LASTMILE_<NAME>``; absent ones keep their
    defaults; an empty rate limit means none)."""
    found: dict[str, object] = {}
    for name, kind in get_type_hints(_OverloadFields).items():
        var = f"LASTMILE_{name.upper()}"
        if kind is str:
            if var in e:
                found[name] = e[var]
        elif (value := _number(e, var, kind, None)) is not None:
            found[name] = value
    return cast(_OverloadFields, found)


def _choice(env: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return value
