"""Helpers for the attack tests: a served demo, browsers, server processes and their memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SECRET = "security-demo-secret-0123456789abcdef"
PASSWORD = "security-demo-password-1"


def run_async(coroutine: Any) -> Any:
    """``asyncio.run`` in a fresh thread: Playwright's sync API (the browser tests) keeps an
    event loop running in the main one."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:.0f} s: {what}")
        time.sleep(0.05)


@dataclass
class Served:
    """A uvicorn server running an app in a thread of this process."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def serve(app: Any, *, port: int | None = None, host: str = "127.0.0.1") -> Served:
    """``app`` on ``host`` (loopback unless a test needs a peer that is not)."""
    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                           log_level="warning", lifespan="on",
                                           http="httptools", loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 60, "uvicorn start")
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    return Served(f"http://{host}:{port}", server, thread)


class Browser:
    """One visitor's browser: a cookie jar that sends same-origin form posts."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=60)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        headers = {"Origin": self.base, **kw.pop("headers", {})}
        return self.http.post(path, headers=headers, **kw)

    def accept_all(self) -> str:
        r = self.post("/_consent", json={"action": "accept_all"})
        assert r.status_code == 200, r.text
        return str(self.cookie("cmw_vid"))

    def report_shown(self, path: str = "/") -> None:
        """What banner.js does once the banner is on screen."""
        r = self.post("/_consent/shown", json={"locale": "ja", "path": path})
        assert r.status_code == 204, r.text

    def cookie(self, name: str) -> str | None:
        return self.http.cookies.get(name)

    def cookies(self) -> dict[str, str]:
        return {c.name: str(c.value) for c in self.http.cookies.jar}

    def close(self) -> None:
        self.http.close()


# --- server processes, and what they hold ------------------------------------------------

def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS now, peak RSS since the process started), MiB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


@contextmanager
def process(args: list[str], *, env: dict[str, str] | None = None,
            ready: Callable[[], bool] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A server in its own process, killed afterwards."""
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if ready is None:
            line = proc.stdout.readline() if proc.stdout else ""
            if "ready" not in line:
                proc.kill()
                _, err = proc.communicate(timeout=10)
                raise RuntimeError(f"server did not start: {err[-2000:]}")
        else:
            wait_for(lambda: proc.poll() is not None or ready(), 90, "server start")
            if proc.poll() is not None:
                _, err = proc.communicate(timeout=10)
                raise RuntimeError(f"server exited: {err[-2000:]}")
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


def server_command(kind: str, port: int) -> list[str]:
    """A server of ``bench/attack_servers.py`` (the bench runs the same attacks)."""
    return [sys.executable, str(ROOT / "bench" / "attack_servers.py"), kind, str(port)]


class Demo:
    """The served demo: its URL, its parts (store, privacy, capture), browsers on it."""

    def __init__(self, served: Served, parts: Any) -> None:  # clinic.app.DemoParts
        self.served = served
        self.parts = parts
        self.url = served.url
        self._browsers: list[Browser] = []

    def browser(self) -> Browser:
        b = Browser(self.url)
        self._browsers.append(b)
        return b

    @property
    def store(self) -> Any:
        return self.parts.store

    def flush(self) -> None:
        assert self.parts.flush(10)

    def close(self) -> None:
        for b in self._browsers:
            b.close()
        self.served.stop()
