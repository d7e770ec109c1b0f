"""Public delivery tracking: ``/track/{token}`` (HTML) and ``/track/{token}.json``.

No authentication: the token (160 random bits) is the capability. Shows the
status, the ETA, the window and the courier's position while en route, and
no personal data beyond first names. Branded as the tenant's (``config.branding``: name,
colour, logo, support e-mail; the tenant's name and the platform's colour otherwise).
"""

from __future__ import annotations

import html
import secrets  # a CSP nonce must be unpredictable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from lastmile.api.deps import ServicesDep
from lastmile.api.schemas import iso
from lastmile.app import tenancy, tenants
from lastmile.app.tenancy import platform_scope
from lastmile.app.webhooks import positions_from
from lastmile.core.delivery.tracking import PublicTracking, public_tracking
from lastmile.core.errors import NotFound
from lastmile.core.eta.travel import speed_of

router = APIRouter(tags=["tracking"])
Token = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^trk_[0-9a-f]+$")]


def _load(request: Request, svc: ServicesDep, token: str) -> PublicTracking:
    # The token is the capability, whatever the tenant: found across tenants (ids are
    # unique across the deployment, so the order and courier it names are its tenant's).
    with platform_scope(), svc.uow(read_only=True) as uow:
        d = uow.deliveries.by_token(token)
        order = uow.orders.get(d.order_id) if d is not None else None
        courier = uow.couriers.get(order.courier_id) if order and order.courier_id else None
        merchant = uow.merchants.get(order.merchant_id) if order else None
    if d is None or order is None or merchant is None:
        raise NotFound("tracking_not_found", "no delivery for this tracking link")
    tenancy.enter(merchant.tenant)  # the rest of the request (pricing, branding) is its tenant's
    now = svc.clock.now()
    live = getattr(request.app.state.container, "live", None)
    fix = positions_from(live, svc)(order.courier_id, now) if order.courier_id else None
    # The courier's vehicle's speed once one holds the order (as the consumer's live feed),
    # else the tenant's quoting speed (core.eta.travel).
    speed_mps = speed_of(courier.vehicle) if courier else tenants.pricing(svc).courier_speed_mps
    return public_tracking(d, order, courier_name=courier.name if courier else None, fix=fix,
                           now=now, speed_mps=speed_mps)


DEFAULT_COLOUR = "#1f6feb"


def brand_out(svc: ServicesDep) -> dict[str, Any]:
    """The current tenant's branding, with its name and the platform's colour as defaults."""
    tenant = tenants.current(svc)
    b = tenants.config_of(tenant).branding
    return {"name": b.display_name or tenant.name, "primary_colour": b.primary_colour
            or DEFAULT_COLOUR, "logo_url": b.logo_url, "support_email": b.support_email}


def tracking_out(t: PublicTracking) -> dict[str, Any]:
    courier = None
    if t.courier_first_name is not None:
        position = (None if t.courier_lat is None
                    else {"lat": t.courier_lat, "lng": t.courier_lng})
        courier = {"first_name": t.courier_first_name, "position": position}
    return {"status": t.status, "label": t.label, "recipient_first_name": t.recipient_first_name,
            "eta": iso(t.eta_at), "window": {"start": iso(t.window_start_at),
                                             "end": iso(t.window_end_at)},
            "courier": courier, "delivered_at": iso(t.delivered_at)}


@router.get("/track/{token}.json")
def tracking_json(request: Request, svc: ServicesDep, token: Token) -> dict[str, Any]:
    return {**tracking_out(_load(request, svc, token)), "brand": brand_out(svc)}


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Your delivery · {brand}</title>
<style nonce="{nonce}">body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
.status{{font-size:1.5rem;font-weight:600;color:{colour}}} dt{{color:#666}} dd{{margin:0 0 .8rem}}
header{{display:flex;align-items:center;gap:.6rem;border-bottom:3px solid {colour};padding-bottom:.5rem}}
header img{{max-height:2.5rem;max-width:8rem}}</style>
</head><body>
<header>{logo}<strong id="brand">{brand}</strong></header>
<h1>Hi {recipient}</h1>
<p class="status" id="status">{label}</p>
<dl><dt>Estimated arrival</dt><dd id="eta">{eta}</dd>
<dt>Delivery window</dt><dd id="window">{window}</dd>
<dt>Courier</dt><dd id="courier">{courier}</dd></dl>
{support}
<script nonce="{nonce}">
setInterval(async () => {{
  const r = await fetch(location.pathname + ".json");
  if (!r.ok) return;
  const t = await r.json();
  document.getElementById("status").textContent = t.label;
  document.getElementById("eta").textContent = t.eta || "-";
  const c = t.courier;
  document.getElementById("courier").textContent = c ? c.first_name +
    (c.position ? " (" + c.position.lat.toFixed(4) + ", " + c.position.lng.toFixed(4) + ")" : "")
    : "not assigned yet";
}}, 15000);
</script>
</body></html>
"""


@router.get("/track/{token}", response_class=HTMLResponse)
def tracking_page(request: Request, svc: ServicesDep, token: Token) -> HTMLResponse:
    t = tracking_out(_load(request, svc, token))
    brand = brand_out(svc)
    courier = t["courier"]
    nonce = secrets.token_urlsafe(16)
    logo = brand["logo_url"]
    email = brand["support_email"]
    page = _PAGE.format(
        nonce=nonce, recipient=html.escape(t["recipient_first_name"]), label=html.escape(t["label"]),
        eta=html.escape(str(t["eta"] or "-")),
        window=html.escape(f"{t['window']['start']} - {t['window']['end']}"),
        courier=html.escape(courier["first_name"] if courier else "not assigned yet"),
        brand=html.escape(brand["name"]), colour=brand["primary_colour"],  # validated #rrggbb
        logo=f'<img src="{html.escape(logo)}" alt="">' if logo else "",
        support=(f'<p>Questions? <a href="mailto:{html.escape(email)}">{html.escape(email)}</a></p>'
                 if email else ""))
    return HTMLResponse(page, headers={"Cache-Control": "no-store",
                                       **page_headers(nonce, image_origin=_origin(logo))})


def _origin(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page_headers(nonce: str, *, image_origin: str | None = None) -> dict[str, str]:
    """Only this response's inline script and style run; the page reads only our JSON;
    images come from us or the tenant's logo origin (https, validated with the config).

    The URL holds the tracking capability: never sent on as a Referer, never framed.
    """
    images = "'self' data:" + (f" {image_origin}" if image_origin else "")
    return {
        "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                   f"style-src 'nonce-{nonce}'; connect-src 'self'; "
                                   f"img-src {images}; base-uri 'none'; form-action 'none'; "
                                   "frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
