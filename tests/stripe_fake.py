"""A local HTTP server that answers as Stripe's API reference documents (tests only).

Covers what ``adapters.payments.stripe_processor`` calls: ``POST /v1/payment_intents``
(``capture_method=manual``, ``confirm=true``), ``POST /v1/payment_intents/{id}/capture``,
``POST /v1/payment_intents/{id}/cancel`` and ``POST /v1/refunds``; errors in Stripe's
shape (``{"error": {"type", "code", "decline_code", "message"}}``) with its statuses
(402 card_error, 400 invalid_request_error / idempotency_error, 401 without a key).
Idempotency as https://docs.stripe.com/api/idempotent_requests documents: a key seen
before answers the saved status and body with ``Idempotent-Replayed: true``; the same
key with other parameters is a 400 ``idempotency_error``. ``stall_once`` makes the first
request with a key do its work, then answer too late (a client time-out).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_KEY = "sk_test_lastmile"
DECLINING = {"pm_card_chargeDeclined": ("card_declined", "generic_decline"),
             "pm_card_chargeDeclinedInsufficientFunds": ("card_declined",
                                                         "insufficient_funds")}


def _nested(form: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``metadata[reference]=x``) as a dict of dicts."""
    out: dict[str, Any] = {}
    for key, value in form:
        if "[" in key:
            head, rest = key.split("[", 1)
            out.setdefault(head, {})[rest.rstrip("]")] = value
        else:
            out[key] = value
    return out


class FakeStripe:
    def __init__(self) -> None:
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []
        self.stall_once: set[str] = set()  # idempotency keys
        self.stall_s = 1.5
        self._seen: dict[str, tuple[str, dict[str, Any], int, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def charges(self) -> int:
        """PaymentIntents that hold or took money (each a real charge at Stripe)."""
        return sum(1 for pi in self.intents.values()
                   if pi["status"] in ("requires_capture", "succeeded"))

    def handle(self, method: str, path: str, headers: dict[str, str],
               params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str], bool]:
        """(status, body, extra headers, stall)."""
        self.requests.append((method, path, params, headers))
        if headers.get("Authorization") != f"Bearer {API_KEY}":
            return 401, _error("invalid_request_error", "api_key_invalid",
                               "Invalid API Key provided"), {}, False
        key = headers.get("Idempotency-Key")
        with self._lock:
            if key is not None and key in self._seen:
                first_path, first_params, status, body = self._seen[key]
                if (first_path, first_params) != (path, params):
                    return 400, _error("idempotency_error", None,
                                       "Keys for idempotent requests can only be used with "
                                       "the same parameters they were first used with."), {}, False
                return status, body, {"Idempotent-Replayed": "true"}, False
            status, body = self._route(path, params)
            if key is not None:
                self._seen[key] = (path, params, status, body)
            stall = key in self.stall_once
            self.stall_once.discard(key or "")
        return status, body, {}, stall

    def _route(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if parts == ["v1", "payment_intents"]:
            return self._create(params)
        if len(parts) == 4 and parts[:2] == ["v1", "payment_intents"]:
            pi = self.intents.get(parts[2])
            if pi is None:
                return 404, _error("invalid_request_error", "resource_missing",
                                   f"No such payment_intent: '{parts[2]}'")
            return self._capture(pi, params) if parts[3] == "capture" else self._cancel(pi)
        if parts == ["v1", "refunds"]:
            return self._refund(params)
        return 404, _error("invalid_request_error", None, f"Unrecognized request URL ({path})")

    def _create(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        pi_id = f"pi_{next(self._ids):024d}"
        pi = {"id": pi_id, "object": "payment_intent", "amount": int(p["amount"]),
              "amount_capturable": 0, "amount_received": 0, "currency": p["currency"],
              "capture_method": p.get("capture_method", "automatic"),
              "metadata": p.get("metadata", {}), "livemode": False,
              "payment_method": p.get("payment_method"), "status": "requires_capture"}
        declined = DECLINING.get(p.get("payment_method", ""))
        if declined is not None:
            pi["status"] = "requires_payment_method"
            self.intents[pi_id] = pi
            err = _error("card_error", declined[0], "Your card was declined.")
            err["error"] |= {"decline_code": declined[1], "payment_intent": pi}
            return 402, err
        pi["amount_capturable"] = pi["amount"]
        self.intents[pi_id] = pi
        return 200, pi

    def _capture(self, pi: dict[str, Any], p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if pi["status"] != "requires_capture":
            return 400, _error("invalid_request_error", "payment_intent_unexpected_state",
                               f"This PaymentIntent could not be captured because it has a "
                               f"status of {pi['status']}.")
        pi["amount_received"] = int(p.get("amount_to_capture", pi["amount"]))
        pi["amount_capturable"] = 0
        pi["status"] = "succeeded"
        return 200, dict(pi)

    def _cancel(self, pi: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if pi["status"] in ("succeeded", "canceled"):
            return 400, _error("invalid_request_error", "payment_intent_unexpected_state",
                               f"You cannot cancel this PaymentIntent because it has a "
                               f"status of {pi['status']}.")
        pi["status"], pi["amount_capturable"] = "canceled", 0
        return 200, dict(pi)

    def _refund(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        pi = self.intents.get(p.get("payment_intent", ""))
        if pi is None or pi["status"] != "succeeded":
            return 400, _error("invalid_request_error", "charge_not_refundable",
                               "This PaymentIntent has no charge to refund.")
        done = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == pi["id"])
        amount = int(p.get("amount", pi["amount_received"] - done))
        if amount > pi["amount_received"] - done:
            return 400, _error("invalid_request_error", "amount_too_large",
                               f"Refund amount ({amount}) is greater than unrefunded amount "
                               f"on charge ({pi['amount_received'] - done})")
        refund = {"id": f"re_{next(self._ids):024d}", "object": "refund", "amount": amount,
                  "currency": pi["currency"], "payment_intent": pi["id"],
                  "status": "succeeded"}
        self.refunds[refund["id"]] = refund
        return 200, refund


def _error(kind: str, code: str | None, message: str) -> dict[str, Any]:
    err: dict[str, Any] = {"type": kind, "message": message}
    if code is not None:
        err["code"] = code
    return {"error": err}


@contextmanager
def fake_stripe() -> Iterator[tuple[FakeStripe, str]]:
    """The fake and its base URL (``http://127.0.0.1:PORT``)."""
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            params = _nested(parse_qsl(raw, keep_blank_values=True))
            status, body, extra, stall = fake.handle("POST", self.path, dict(self.headers),
                                                     params)
            if stall:
                time.sleep(fake.stall_s)  # the work is done; the answer comes too late
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Request-Id", f"req_{len(fake.requests)}")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a time-out)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
