"""Settings: read from the environment once, in bootstrap or the CLI, never at import."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


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
    # How often late orders are flagged and finished shifts ended.
    housekeeping_interval_s: float = 30.0

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
