"""The API key cache: a valid key is trusted for a bounded time, a ban revokes it at once in
the process that bans and within the cache's TTL in every other process."""

from dataclasses import replace

import pytest

from lastmile.app import bans
from lastmile.app.auth import Principal, authenticate, cached_principal
from lastmile.app.key_cache import DEFAULT_TTL_S, KeyCache
from lastmile.core.errors import Unauthorized
from lastmile.core.orders import Actor, ActorKind

OPS = Actor(kind=ActorKind.OPS, id="ops-1")


def _ban(p, courier_id):
    return bans.ban_courier(p.services, courier_id, reason="fraud", actor=OPS,
                            live=p.container.live)


def test_a_ban_revokes_a_key_this_process_has_cached(platform):
    p = platform
    cid = p.seed.courier_ids[0]
    key = p.key("courier", cid)
    assert authenticate(p.services, key).subject_id == cid
    assert cached_principal(p.services, key) is not None  # the next request skips the database
    _ban(p, cid)
    assert cached_principal(p.services, key) is None
    with pytest.raises(Unauthorized):
        authenticate(p.services, key)


def test_another_process_refuses_a_revoked_key_within_the_cache_ttl(platform):
    p = platform
    cid = p.seed.courier_ids[0]
    key = p.key("courier", cid)
    other = replace(p.services, key_cache=KeyCache())  # another API process: its own cache
    assert authenticate(other, key).subject_id == cid
    _ban(p, cid)
    p.clock.advance(DEFAULT_TTL_S / 2)
    assert authenticate(other, key).subject_id == cid  # the stated bound: up to the TTL
    p.clock.advance(DEFAULT_TTL_S / 2)
    with pytest.raises(Unauthorized):
        authenticate(other, key)


def test_unknown_keys_are_never_cached(platform):
    p = platform
    for _ in range(2):
        with pytest.raises(Unauthorized):
            authenticate(p.services, "lm_cou_not-a-key")
    assert cached_principal(p.services, "lm_cou_not-a-key") is None


def test_a_lookup_that_raced_a_revocation_is_not_stored():
    cache = KeyCache(ttl_s=5.0)
    began = cache.generation  # the lookup read the row before the ban committed
    cache.forget_subject("courier", "cou_1")
    cou_1 = Principal(role="courier", subject_id="cou_1")
    cache.put("h", cou_1, now=0.0, generation=began)
    assert cache.get("h", now=0.0) is None
    cache.put("h", cou_1, now=0.0, generation=cache.generation)
    assert cache.get("h", now=4.9) == cou_1
    assert cache.get("h", now=5.0) is None


def test_forgetting_a_subject_keeps_the_other_subjects_keys():
    cache = KeyCache()
    cou_2 = Principal(role="courier", subject_id="cou_2")
    cache.put("a", Principal(role="courier", subject_id="cou_1"), now=0.0, generation=0)
    cache.put("b", cou_2, now=0.0, generation=0)
    cache.forget_subject("courier", "cou_1")
    assert cache.get("a", now=1.0) is None and cache.get("b", now=1.0) == cou_2


def test_a_cached_key_keeps_its_own_tenant_whoever_it_acted_for(platform):
    """Issue 9: the cache holds the key's own principal (its tenant, its acts_for); acting
    for another tenant by header is decided per request and never stored."""
    from lastmile.app.auth import issue_api_key
    from lastmile.app.tenancy import acting_as
    from lastmile.app.tenants import create_tenant

    p = platform
    create_tenant(p.services, "acme:live")
    with acting_as("acme:live"):
        key = issue_api_key(p.services, role="ops", subject_id="ops-1",
                            acts_for=("doortest:*",))[1]
    plain = p.key("ops", "ops-1")  # the same subject id in the default tenant
    acting = authenticate(p.services, key).as_tenant("doortest:probe")
    assert acting.tenant == "doortest:probe"
    cached = cached_principal(p.services, key)
    assert cached is not None and cached.tenant == "acme:live"
    assert cached.as_tenant(None).tenant == "acme:live"
    assert authenticate(p.services, plain).tenant == "lastmile:default"
    assert cached_principal(p.services, plain).tenant == "lastmile:default"  # type: ignore[union-attr]
