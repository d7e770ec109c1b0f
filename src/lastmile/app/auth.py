"""API keys bound to a role and an id (only their SHA-256 is stored), and short-lived
stream tokens that stand for a key where a URL must carry the credential."""

from __future__ import annotations

import hashlib
import secrets  # keys are capabilities: never from the injectable, possibly seeded, rng
from collections.abc import Sequence
from dataclasses import dataclass, replace

from lastmile.app.context import Services
from lastmile.app.ports import ApiKeyRecord
from lastmile.app.tenancy import current_tenant, platform_scope
from lastmile.core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from lastmile.core.model import Courier
from lastmile.core.orders import Actor, ActorKind
from lastmile.core.signed_tokens import open_fields, sign_fields
from lastmile.core.tenancy import DEFAULT_TENANT, acting_tenant, parse_pattern

ROLES = ("consumer", "merchant", "courier", "ops")
STREAM_TOKEN_PREFIX = "lmst_"
STREAM_TOKEN_TTL_S = 60
_STREAM_PURPOSE = "stream_token"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    role: str
    subject_id: str
    tenant: str = DEFAULT_TENANT  # the key's tenant (``as_tenant``: the one it acts for)
    acts_for: tuple[str, ...] = ()  # tenant patterns the key may act for by header

    def as_tenant(self, requested: str | None) -> Principal:
        """This principal acting for ``requested`` (the X-Lastmile-Tenant header): its own
        tenant when None; another only if the key may act for it, else 403."""
        tenant = acting_tenant(self.tenant, self.acts_for, requested)
        return self if tenant == self.tenant else replace(self, tenant=tenant)

    @property
    def actor(self) -> Actor:
        return Actor(kind=ActorKind(self.role), id=self.subject_id)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue_api_key(services: Services, *, role: str, subject_id: str,
                  acts_for: Sequence[str] = ()) -> tuple[str, str]:
    """A new key for ``subject_id`` acting as ``role`` in the current tenant: (key_id,
    plaintext shown once). ``acts_for`` (ops keys only): tenant patterns it may also act
    for with the X-Lastmile-Tenant header, e.g. ``doortest:*`` for the test tenants."""
    if role not in ROLES:
        raise InvalidInput("invalid_role", f"role must be one of {', '.join(ROLES)} (got {role!r})",
                           field="role")
    patterns = tuple(parse_pattern(p) for p in acts_for)
    if patterns and role != "ops":
        raise InvalidInput("acts_for_ops_only",
                           f"only ops keys may act for other tenants (role {role!r})",
                           field="acts_for")
    with services.uow() as uow:
        exists = {
            "consumer": uow.consumers.get, "merchant": uow.merchants.get,
            "courier": uow.couriers.get,
        }.get(role)
        subject = exists(subject_id) if exists is not None else None
        if exists is not None and subject is None:
            raise NotFound(f"{role}_not_found", f"no {role} {subject_id}", field="subject_id")
        if isinstance(subject, Courier) and subject.banned:
            # A ban revokes the courier's keys; a new key must not let them back in.
            raise Forbidden("courier_banned", f"courier {subject_id} is banned; no key is issued",
                            field="subject_id")
        plaintext = f"lm_{role[:3]}_{secrets.token_hex(24)}"
        key_id = services.ids.new("key")
        uow.api_keys.add(ApiKeyRecord(key_id=key_id, key_hash=hash_key(plaintext), role=role,
                                      subject_id=subject_id, created_at=services.clock.now(),
                                      tenant_id=current_tenant(), acts_for=patterns))
        uow.commit()
    return key_id, plaintext


def cached_principal(services: Services, plaintext: str | None) -> Principal | None:
    """The principal of a key validated lately (no I/O), or None: then ``authenticate``."""
    if not plaintext:
        return None
    cached = services.key_cache.get(hash_key(plaintext), now=services.clock.now())
    return cached if isinstance(cached, Principal) else None


def authenticate(services: Services, plaintext: str | None) -> Principal:
    """The key's principal; a valid key is trusted from ``services.key_cache`` for a
    bounded time (``app.key_cache``: revocation is immediate in the revoking process,
    within its TTL elsewhere)."""
    if not plaintext:
        raise Unauthorized("missing_api_key", "send an API key as 'Authorization: Bearer <key>'")
    known = cached_principal(services, plaintext)
    if known is not None:
        return known
    digest, cache = hash_key(plaintext), services.key_cache
    generation = cache.generation
    # The key says which tenant the caller is: found across tenants, by its hash alone.
    with platform_scope(), services.uow(read_only=True) as uow:
        record = uow.api_keys.by_hash(digest)
    if record is None or record.revoked:
        raise Unauthorized("invalid_api_key", "the API key is unknown or revoked")
    who = Principal(role=record.role, subject_id=record.subject_id, tenant=record.tenant_id,
                    acts_for=tuple(record.acts_for))
    cache.put(digest, who, now=services.clock.now(), generation=generation)
    return who


def issue_stream_token(services: Services, who: Principal, *,
                       ttl_s: int = STREAM_TOKEN_TTL_S) -> tuple[str, float]:
    """A token that opens WebSocket feeds as ``who`` for ``ttl_s`` seconds: (token, expires_at).

    Browsers cannot put headers on a WebSocket handshake, so the credential goes in
    the URL or the subprotocol; a token that expires in a minute is what may end up
    in an access log, never the API key. Signed with the server key (HMAC-SHA256);
    it is not revoked with the key, which is why it lives only a minute.
    """
    if not 1 <= ttl_s <= 300:
        raise InvalidInput("invalid_ttl", f"ttl_s must be in [1, 300] (got {ttl_s})",
                           field="ttl_s")
    expires_at = services.clock.now() + ttl_s
    body = sign_fields({"r": who.role, "s": who.subject_id, "t": who.tenant, "exp": expires_at},
                       key=services.signing_key, purpose=_STREAM_PURPOSE)
    return STREAM_TOKEN_PREFIX + body, expires_at


def authenticate_stream(services: Services, credential: str | None) -> Principal:
    """The caller behind a stream token or an API key (401 ``invalid_stream_token`` when a
    token is forged, altered or expired)."""
    if not credential or not credential.startswith(STREAM_TOKEN_PREFIX):
        return authenticate(services, credential)
    fields = open_fields(credential.removeprefix(STREAM_TOKEN_PREFIX),
                         key=services.signing_key, purpose=_STREAM_PURPOSE)
    try:
        valid = fields is not None and services.clock.now() < float(fields["exp"])
        role, subject = (str(fields["r"]), str(fields["s"])) if fields else ("", "")
        tenant = str(fields.get("t", DEFAULT_TENANT)) if fields else DEFAULT_TENANT
    except (KeyError, TypeError, ValueError):
        valid = False
    if not valid or role not in ROLES:
        raise Unauthorized("invalid_stream_token",
                           "the stream token is unknown or expired; get a new one with "
                           "POST /v1/stream-tokens")
    return Principal(role=role, subject_id=subject, tenant=tenant)
