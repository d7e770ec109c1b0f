"""Security headers for every HTML response: no page leaves without a Content-Security-Policy.

Our own pages set their own policy (the dashboard; the tracking page with a
per-response nonce). Anything else that answers ``text/html`` without one gets
a policy here: the API documentation pages (Swagger UI and ReDoc load their
bundles from jsDelivr and run one inline script), and a deny-all policy for any
other HTML, so a page added later is locked down until it states what it needs.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DENY_ALL = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_DOCS = ("default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
         "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
         "font-src https://fonts.gstatic.com; img-src 'self' data: https:; connect-src 'self'; "
         "worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})


def policy_for(path: str) -> str:
    return _DOCS if path in _DOCS_PATHS else DENY_ALL


class HtmlSecurityHeaders:
    """ASGI middleware: adds CSP, nosniff and no-referrer to HTML responses that lack them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    extra = {b"content-security-policy": policy_for(path).encode(),
                             b"x-content-type-options": b"nosniff",
                             b"referrer-policy": b"no-referrer"}
                    headers += [(k, v) for k, v in extra.items() if k not in names]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
