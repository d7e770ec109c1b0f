"""Tenants read lately: kind and config change rarely and guardrails ask on every order."""

from __future__ import annotations

import threading
from collections.abc import Callable

from lastmile.core.tenancy import Tenant

INFO_TTL_S = 5.0  # how long a process trusts a tenant's row it read (kind, config)


class TenantCache:
    """Tenant id -> its row for ``ttl_s`` seconds; a change in this process is seen at once
    (``forget``), in others within the TTL."""

    def __init__(self, ttl_s: float = INFO_TTL_S):
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[Tenant, float]] = {}
        self._lock = threading.Lock()

    def get(self, tenant_id: str, *, now: float, load: Callable[[str], Tenant]) -> Tenant:
        entry = self._entries.get(tenant_id)
        if entry is not None and 0 <= now - entry[1] < self.ttl_s:
            return entry[0]
        tenant = load(tenant_id)
        with self._lock:
            self._entries[tenant_id] = (tenant, now)
        return tenant

    def forget(self, tenant_id: str) -> None:
        with self._lock:
            self._entries.pop(tenant_id, None)
