"""The HTTP transport for webhooks: stdlib http.client with a hard total deadline.

- No redirects are followed (``http.client`` never follows them): a redirect
  could carry a signed payload to a host the business never registered.
- ``timeout_s`` bounds the connect, then the whole exchange after it (TLS,
  request, status and headers, up to ``max_response_bytes`` of body), not each
  socket read: a receiver that drips one byte a second cannot hold the sender.
- Server-side request forgery: by default a URL whose host resolves to a
  loopback, private, link-local (cloud metadata), CGNAT, multicast or reserved
  address is refused, and the connection goes to the address that was checked
  (no second DNS lookup to rebind). Tests and on-premises receivers pass
  ``allow_private_networks=True``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from urllib.parse import urlsplit

from lastmile.core.webhooks import is_public_address


class BlockedDestination(OSError):
    """The URL's host resolves to an address webhooks may not reach."""


def _resolve(host: str, port: int, *, allow_private: bool) -> str:
    """The first address of ``host``; refuses the lot if any address is not public."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        blocked = [a for a in addresses if not is_public_address(a)]
        if blocked:
            raise BlockedDestination(
                f"webhook host {host!r} resolves to a non-public address ({blocked[0]}); "
                "refused (allow_private_networks is off)")
    return addresses[0]


class HttpTransport:
    """Posts webhooks over HTTP(S) with a whole-exchange deadline and an SSRF guard."""

    def __init__(self, *, allow_private_networks: bool = False,
                 max_response_bytes: int = 64 * 1024) -> None:
        self._allow_private = allow_private_networks
        self._max_bytes = max_response_bytes

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
        """The response status (any code); raises OSError when no answer came in time."""
        parts = urlsplit(url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        address = _resolve(host, port, allow_private=self._allow_private)
        expired = threading.Event()
        raw = socket.create_connection((address, port), timeout=timeout_s)

        def abort() -> None:  # wakes any blocked read or write at the deadline
            expired.set()
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        timer = threading.Timer(timeout_s, abort)
        timer.daemon = True
        timer.start()
        try:
            status = self._exchange(raw, https=https, host=host, port=port, body=body,
                                    path=(parts.path or "/") + (f"?{parts.query}" if parts.query
                                                                else ""),
                                    headers=headers, timeout_s=timeout_s)
            if expired.is_set():  # the cut-off answer can still parse: it does not count
                raise TimeoutError(f"no complete answer within {timeout_s} s")
            return status
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise TimeoutError(f"no complete answer within {timeout_s} s") from exc
            if isinstance(exc, OSError):
                raise
            raise ConnectionError(f"bad HTTP answer: {type(exc).__name__}") from exc
        finally:
            timer.cancel()
            raw.close()

    def _exchange(self, raw: socket.socket, *, https: bool, host: str, port: int, path: str,
                  body: bytes, headers: dict[str, str], timeout_s: float) -> int:
        sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host) if https else raw
        conn = (http.client.HTTPSConnection if https else http.client.HTTPConnection)(
            host, port, timeout=timeout_s)
        conn.sock = sock  # already connected to the checked address
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read(self._max_bytes)
            return int(response.status)
        finally:
            conn.close()
