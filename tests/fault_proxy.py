"""A loopback TCP forwarder to put in front of PostgreSQL, Redis or NATS and break on demand.

    with FaultProxy(("127.0.0.1", 5432)) as proxy:   # listens on 127.0.0.1:<free port>
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        proxy.cut()                 # live connections closed; new ones refused (RST)
        proxy.cut(mode="blackhole") # ... or accepted and never answered
        proxy.restore()             # forwards again
        proxy.set_latency(0.3)      # every chunk waits 0.3 s each way

Threads, one per direction per connection, all daemon; ``stop()`` (or leaving the ``with``)
closes the listener and every connection and joins the threads, bounded. A refused connect
is a real RST (SO_LINGER 0 on an accepted socket), so clients see "connection refused or
reset" at once, as when the server is down; a blackholed one hangs until the client's own
connect timeout, as behind a dead router.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from typing import Literal

Mode = Literal["refuse", "blackhole"]
_CHUNK = 65536
_POLL_S = 0.05  # how often idle threads look at the stop and cut flags


class FaultProxy:
    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1"):
        self.target = target
        self._listener = socket.create_server((host, 0), backlog=128)
        self._listener.settimeout(_POLL_S)
        self.host, self.port = host, int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._held: list[socket.socket] = []  # blackholed client sockets, never answered
        self._mode: Mode | None = None
        self._latency_s = 0.0
        self._stop = threading.Event()
        self.accepted = 0
        self.refused = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy",
                                          daemon=True)
        self._acceptor.start()

    # -- control -------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def cut(self, mode: Mode = "refuse") -> None:
        """Close every live connection (both ends) and refuse or blackhole new ones."""
        with self._lock:
            self._mode = mode
            conns, self._conns = self._conns, set()
        for sock in conns:
            _reset(sock)

    def restore(self) -> None:
        """Forward new connections again (the cut ones stay closed, as after a real outage)."""
        with self._lock:
            self._mode = None
            held, self._held = self._held, []
        for sock in held:
            _reset(sock)

    def set_latency(self, seconds: float) -> None:
        """Delay every forwarded chunk by ``seconds`` (0 for none), both directions."""
        if seconds < 0:
            raise ValueError(f"latency must be >= 0 (got {seconds})")
        self._latency_s = seconds

    def stop(self) -> None:
        self._stop.set()
        self.cut()
        self._listener.close()
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            _reset(sock)
        deadline = time.monotonic() + 5
        for thread in [self._acceptor, *self._threads]:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- forwarding ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed
            with self._lock:
                mode = self._mode
                if mode == "blackhole":
                    self._held.append(client)
                    continue
            if mode == "refuse":
                self.refused += 1
                _reset(client)
                continue
            self._open(client)

    def _open(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=2)
        except OSError:
            _reset(client)  # the real server is down: say so the same way
            return
        with self._lock:
            cut_meanwhile = self._mode is not None or self._stop.is_set()
            if not cut_meanwhile:
                self._conns.update((client, upstream))
        if cut_meanwhile:  # cut() ran while this one was connecting: it is cut too
            _reset(client)
            _reset(upstream)
            return
        self.accepted += 1
        self._threads = [t for t in self._threads if t.is_alive()]
        for src, dst in ((client, upstream), (upstream, client)):
            t = threading.Thread(target=self._pump, args=(src, dst), daemon=True,
                                 name="fault-proxy-pump")
            t.start()
            self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                try:
                    ready, _, _ = select.select([src], [], [], _POLL_S)
                except (OSError, ValueError):
                    return  # closed by cut()
                if not ready:
                    continue
                data = src.recv(_CHUNK)
                if not data:
                    return
                if self._latency_s:
                    time.sleep(self._latency_s)
                dst.sendall(data)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            _reset(src)
            _reset(dst)


def _reset(sock: socket.socket) -> None:
    """Close with an RST (linger 0): the peer sees the connection drop at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
