"""Platform processes for fault tests: started on a free port, waited for, killed (-9 when
the test says so), and always reaped, also when the test fails."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """One ``lastmile`` process; its output goes to ``log`` (read it when a test fails)."""

    def __init__(self, name: str, cmd_for_port: list[str], port: int, env: dict[str, str],
                 log_dir: Path):
        self.name, self.cmd, self.port, self.env = name, cmd_for_port, port, env
        self.log = log_dir / f"{name}.log"
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_within_s: float = 40.0) -> Process:
        """Start (or restart, on the same port) and wait until /healthz answers (a
        dispatcher, which serves no HTTP: until it prints its banner)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + ready_within_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.tail()}")
            if "dispatcher" in self.cmd:
                if "dispatcher " in self.tail(1000):
                    return self
            else:
                try:
                    if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready within {ready_within_s} s: {self.tail()}")

    def kill9(self) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine dies."""
        if self.proc is not None and self.proc.poll() is None:
            # The whole process group: a scale server's API workers die with their parent.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill9()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
