"""API keys bound to a role and an id; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lastmile.app.context import Services
from lastmile.app.ports import ApiKeyRecord
from lastmile.core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from lastmile.core.model import Courier
from lastmile.core.orders import Actor, ActorKind

ROLES = ("consumer", "merchant", "courier", "ops")


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    role: str
    subject_id: str

    @property
    def actor(self) -> Actor:
        return Actor(kind=ActorKind(self.role), id=self.subject_id)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue_api_key(services: Services, *, role: str, subject_id: str) -> tuple[str, str]:
    """A new key for ``subject_id`` acting as ``role``: (key_id, plaintext shown once)."""
    if role not in ROLES:
        raise InvalidInput("invalid_role", f"role must be one of {', '.join(ROLES)} (got {role!r})",
                           field="role")
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
        plaintext = f"lm_{role[:3]}_{services.rng.getrandbits(192):048x}"
        key_id = services.ids.new("key")
        uow.api_keys.add(ApiKeyRecord(key_id=key_id, key_hash=hash_key(plaintext), role=role,
                                      subject_id=subject_id, created_at=services.clock.now()))
        uow.commit()
    return key_id, plaintext


def authenticate(services: Services, plaintext: str | None) -> Principal:
    if not plaintext:
        raise Unauthorized("missing_api_key", "send an API key as 'Authorization: Bearer <key>'")
    with services.uow(read_only=True) as uow:
        record = uow.api_keys.by_hash(hash_key(plaintext))
    if record is None or record.revoked:
        raise Unauthorized("invalid_api_key", "the API key is unknown or revoked")
    return Principal(role=record.role, subject_id=record.subject_id)
