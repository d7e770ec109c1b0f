"""What simulated people can do on the platform, and the in-process adapter.

``world.World`` only talks to an ``Actions``: ``DirectActions`` calls the use
cases in-process on a simulated clock (``lastmile simulate``);
``demo.HttpActions`` does the same through the HTTP API with API keys
(``lastmile demo``). Both raise ``Refused`` when the platform says no (an
offer expired, an order was cancelled meanwhile): people in a city race.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from lastmile.app import fulfilment, offers, queries, shifts
from lastmile.app.acceptance import AcceptanceLearner
from lastmile.app.context import Services
from lastmile.app.dispatching import LiveTravel, dispatch_round
from lastmile.app.ordering import LineRequest, OrderRequest, get_quote, place_order
from lastmile.app.tracking import Tracking, ingest_pings
from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.errors import DomainError
from lastmile.core.geo import Point
from lastmile.core.offers import Offer, OfferStop
from lastmile.core.orders import Actor, ActorKind, DeliveryProof

_P = ParamSpec("_P")
_R = TypeVar("_R")


class Refused(Exception):
    """The platform refused an action (a 4xx / DomainError); ``code`` says why."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteView:
    fees_minor: int  # delivery + service + small-order fee
    eta_expected_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacedView:
    order_id: str
    placed_at: float
    eta_expected_at: float
    eta_high_at: float
    eta_low_at: float | None = None
    fees_minor: int
    currency: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferView:
    id: str
    order_ids: tuple[str, ...]
    # A stacked offer's route (pickup merchant 1, pickup merchant 2, drop-offs), which the
    # simulated courier follows; () for one merchant's orders.
    stops: tuple[OfferStop, ...] = ()
    expires_at: float | None = None
    # A move (reassignment): the courier who holds the orders until this one accepts.
    from_courier_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAsk:
    consumer_id: str
    merchant_id: str
    item_id: str
    quantity: int
    dropoff: Point


class Actions(Protocol):
    def quote(self, ask: OrderAsk) -> QuoteView: ...
    def place(self, ask: OrderAsk, *, key: str) -> PlacedView: ...
    def confirm(self, merchant_id: str, order_id: str, prep_s: int) -> None: ...
    def mark_ready(self, merchant_id: str, order_id: str) -> None: ...
    def cancel(self, consumer_id: str, order_id: str, reason: str) -> None: ...
    def start_shift(self, courier_id: str, device_id: str, duration_s: int) -> None: ...
    def end_shift(self, courier_id: str) -> None: ...
    def ping(self, courier_id: str, device_id: str, at: Point) -> None: ...
    def current_offer(self, courier_id: str) -> OfferView | None: ...
    def accept(self, courier_id: str, offer_id: str) -> None: ...
    def decline(self, courier_id: str, offer_id: str) -> None: ...
    def arrive(self, courier_id: str, order_id: str) -> None: ...
    def pick_up(self, courier_id: str, order_id: str) -> None: ...
    def deliver(self, courier_id: str, order_id: str) -> None: ...
    def dispatch(self, region_ids: tuple[str, ...]) -> tuple[str, ...] | None:
        """Run a dispatch round where the world owns it; returns the couriers offered
        something, or None when the actions cannot tell (a server dispatches on its own)."""
        ...


def fees_of(prices: dict[str, int]) -> int:
    return prices["delivery_fee"] + prices["service_fee"] + prices["small_order_fee"]


def _request(ask: OrderAsk) -> OrderRequest:
    return OrderRequest(consumer_id=ask.consumer_id, merchant_id=ask.merchant_id,
                        lines=(LineRequest(item_id=ask.item_id, quantity=ask.quantity),),
                        dropoff=ask.dropoff)


def _actor(kind: ActorKind, id_: str) -> Actor:
    return Actor(kind=kind, id=id_)


@dataclass(slots=True, kw_only=True)
class _OfferBoard:
    """The live offers of the regions a dispatch just ran in, read once, as at ``at``."""

    at: float
    regions: frozenset[str]
    by_courier: dict[str, Offer]


class DirectActions:
    """Calls the use cases in this process (the simulator's fast path).

    After ``dispatch`` the world asks every idle courier for its offer; those answers come
    from one read of the rounds' regions' live offers (``offers.current_offers_in``) while
    the simulated clock stands still and nothing else was done, the same answers
    ``offers.current_offer`` gives one courier at a time (a courier is offered work only
    in its own region). Any other action, or a moved clock, drops that board.
    """

    def __init__(self, services: Services, tracking: Tracking, *,
                 policy: DispatchPolicy | None = None, travel: LiveTravel | None = None,
                 acceptance: AcceptanceLearner | None = None):
        self.s = services
        self.tracking = tracking
        self.policy = policy or DispatchPolicy()
        self.travel = travel or LiveTravel()
        self._board: _OfferBoard | None = None
        self._region_of: dict[str, str] = {}  # courier id -> region (never changes)
        self.acceptance = acceptance

    def _call(self, fn: Callable[Concatenate[Services, _P], _R], *args: _P.args,
              **kwargs: _P.kwargs) -> _R:
        self._board = None
        try:
            return fn(self.s, *args, **kwargs)
        except DomainError as exc:
            raise Refused(exc.code, exc.message) from exc

    def quote(self, ask: OrderAsk) -> QuoteView:
        q = self._call(get_quote, _request(ask))
        return QuoteView(fees_minor=fees_of(q.prices.as_minor()), eta_expected_at=q.eta.expected_at)

    def place(self, ask: OrderAsk, *, key: str) -> PlacedView:
        o = self._call(place_order, _request(ask), idempotency_key=key).order
        return PlacedView(order_id=o.id, placed_at=o.placed_at, eta_expected_at=o.eta.expected_at,
                          eta_high_at=o.eta.high_at, eta_low_at=o.eta.low_at, fees_minor=fees_of(o.prices.as_minor()),
                          currency=o.currency)

    def confirm(self, merchant_id: str, order_id: str, prep_s: int) -> None:
        self._call(fulfilment.confirm_order, order_id, prep_estimate_s=prep_s,
                   actor=_actor(ActorKind.MERCHANT, merchant_id))

    def mark_ready(self, merchant_id: str, order_id: str) -> None:
        self._call(fulfilment.mark_ready, order_id, actor=_actor(ActorKind.MERCHANT, merchant_id))

    def cancel(self, consumer_id: str, order_id: str, reason: str) -> None:
        self._call(fulfilment.cancel_order, order_id, reason=reason,
                   actor=_actor(ActorKind.CONSUMER, consumer_id))

    def start_shift(self, courier_id: str, device_id: str, duration_s: int) -> None:
        self._call(fulfilment.start_shift, courier_id, device_id=device_id,
                   ends_at=self.s.clock.now() + duration_s,
                   actor=_actor(ActorKind.COURIER, courier_id))

    def end_shift(self, courier_id: str) -> None:
        self._call(shifts.end_shift, courier_id, actor=_actor(ActorKind.COURIER, courier_id),
                   live=self.tracking.live)

    def ping(self, courier_id: str, device_id: str, at: Point) -> None:
        raw = [{"device_id": device_id, "lat": at.lat, "lng": at.lng, "accuracy_m": 10.0,
                "client_ts": self.s.clock.now()}]
        try:
            ingest_pings(self.tracking, courier_id=courier_id, raw=raw)
        except DomainError as exc:
            raise Refused(exc.code, exc.message) from exc

    def current_offer(self, courier_id: str) -> OfferView | None:
        board = self._board
        if board is not None and board.at == self.s.clock.now():
            region = self._region_of.get(courier_id)
            if region is None:
                region = self._region_of[courier_id] = queries.get_courier(
                    self.s, courier_id).region_id
            if region in board.regions:
                return _view(board.by_courier.get(courier_id))
        return _view(offers.current_offer(self.s, courier_id))

    def accept(self, courier_id: str, offer_id: str) -> None:
        self._call(offers.accept_offer, offer_id, actor=_actor(ActorKind.COURIER, courier_id))

    def decline(self, courier_id: str, offer_id: str) -> None:
        self._call(offers.decline_offer, offer_id, reason="not for me",
                   actor=_actor(ActorKind.COURIER, courier_id))

    def arrive(self, courier_id: str, order_id: str) -> None:
        self._call(fulfilment.courier_arrive, order_id, actor=_actor(ActorKind.COURIER, courier_id))

    def pick_up(self, courier_id: str, order_id: str) -> None:
        self._call(fulfilment.pick_up, order_id, actor=_actor(ActorKind.COURIER, courier_id))

    def deliver(self, courier_id: str, order_id: str) -> None:
        self._call(fulfilment.deliver, order_id, proof=DeliveryProof(photo_ref="sim://door"),
                   actor=_actor(ActorKind.COURIER, courier_id))

    def dispatch(self, region_ids: tuple[str, ...]) -> tuple[str, ...]:
        self._board = None
        offered: list[str] = []
        for region_id in region_ids:
            r = dispatch_round(self.s, self.tracking.live, region_id, self.policy,
                               travel=self.travel, acceptance=self.acceptance)
            offered.extend(o.courier_id for o in (*r.offers, *r.extensions, *r.moves))
        # The offered couriers ask for their offer next (the world's tick): one read per
        # region answers them all (``current_offer``).
        by_courier: dict[str, Offer] = {}
        for region_id in region_ids:
            by_courier.update(offers.current_offers_in(self.s, region_id))
        self._board = _OfferBoard(at=self.s.clock.now(), regions=frozenset(region_ids),
                                  by_courier=by_courier)
        return tuple(offered)


def _view(o: Offer | None) -> OfferView | None:
    """What a simulated courier sees of an offer (one rule for the board and the query)."""
    if o is None:
        return None
    return OfferView(id=o.id, order_ids=o.order_ids, stops=o.stops, expires_at=o.expires_at,
                     from_courier_id=o.from_courier_id)
