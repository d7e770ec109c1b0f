"""Two senders never post the same webhook message or notice at once; a crashed sender's
claim lapses and the message is sent after all."""

import threading

from lastmile.core.delivery.notices import NoticeKind, Notification
from lastmile.core.webhooks import Message


def _notice(i: int, now: float) -> Notification:
    return Notification(id=f"ntf_{i}", event_id=f"evt_{i}", kind=NoticeKind.DELIVERED,
                        recipient_kind="consumer", recipient_id="con_1", channel="log",
                        subject="s", body="b", created_at=now, next_attempt_at=now)


def _queue(platform, n: int) -> None:
    now = platform.clock.now()
    with platform.services.uow() as uow:
        for i in range(n):
            uow.notifications.add(_notice(i, now))
        uow.commit()


def test_a_claimed_notice_is_not_due_again_until_its_lease_lapses(platform):
    _queue(platform, 3)
    now = platform.clock.now()
    with platform.services.uow() as uow:
        assert len(uow.notifications.due(now, 10, lease_s=60)) == 3
        uow.commit()
    with platform.services.uow() as uow:
        assert uow.notifications.due(now, 10, lease_s=60) == []
        uow.commit()
    with platform.services.uow(read_only=True) as uow:
        assert len(uow.notifications.due(now + 61, 10)) == 3  # the sender crashed: back again


def test_concurrent_claims_are_disjoint(platform):
    _queue(platform, 40)
    now = platform.clock.now()
    claimed: list[list[str]] = []
    barrier = threading.Barrier(4)

    def sender():
        barrier.wait()
        with platform.services.uow() as uow:
            ids = [n.id for n in uow.notifications.due(now, 15, lease_s=60)]
            uow.commit()
        claimed.append(ids)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in claimed for i in ids]
    assert len(every) == len(set(every)) == 40


def test_webhook_messages_are_claimed_the_same_way(platform):
    now = platform.clock.now()
    with platform.services.uow() as uow:
        for i in range(3):
            uow.webhooks.enqueue(Message(
                id=f"msg_{i}", endpoint_id="whe_1", merchant_id="mer_1", event_id=f"evt_{i}",
                event_type="delivery.created", payload={}, created_at=now,
                next_attempt_at=now))
        assert len(uow.webhooks.due(now, 10, lease_s=300)) == 3
        uow.commit()
    with platform.services.uow(read_only=True) as uow:
        assert uow.webhooks.due(now + 299, 10) == []
        assert len(uow.webhooks.due(now + 301, 10)) == 3
