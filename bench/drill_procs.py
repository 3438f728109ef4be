"""The processes of a fault drill, and what they leave on disk.

:class:`CollectorProc` is a real ``consent-mw collector`` on an embedded chDB store,
:class:`WebProc` a real uvicorn serving ``bench.drill_app`` (httptools, uvloop). Both are run
from the repository root with it on ``PYTHONPATH``, so they run this tree's code, and both
can be killed, frozen and restarted on the same port, store and spool. :func:`stored_paths`
and :func:`query_store` read a store in a subprocess (a chDB directory admits one process at
a time; the caller may hold chDB sessions of its own), :func:`spool_contents` reads a spool
directory as the web process left it.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

from bench.procfs import free_port, pinned
from consent_mw.capture.spool.disk import SUFFIX

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "drill-collector-token-0123456789"
SECRET = "drill-secret-key-0123456789abcdef"


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its CONSENT_MW_* and DRILL_* settings (a drill
    sets its own), with the tree on PYTHONPATH, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONSENT_MW_", "DRILL_"))}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


class Proc:
    """A server process: started, polled until ``ready_path`` answers, signalled."""

    name = "server"
    ready_path = "/"

    def __init__(self, *, port: int | None, cpu: int | None, log: Path | None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cpu = cpu
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        if self.alive:
            raise RuntimeError(f"{self.name} already running")
        if self.log is not None and self._log_fh is None:
            self._log_fh = open(self.log, "ab")  # noqa: SIM115 (kept open across restarts)
        self.proc = subprocess.Popen(pinned(self.command(), self.cpu), cwd=ROOT,
                                     env=self.environment(), stdout=self._log_fh,
                                     stderr=self._log_fh)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited ({self._exit()}); see {self.log}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path,
                                            timeout=1) as resp:
                    resp.read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} at {self.url} not ready in {timeout:.0f} s")

    def _exit(self) -> str:
        return "not started" if self.proc is None else f"rc {self.proc.poll()}"

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (after SIGCONT, in case it is frozen) and wait: a clean shutdown."""
        if not self.alive:
            return None if self.proc is None else self.proc.returncode
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            raise RuntimeError(f"{self.name} did not stop in {timeout:.0f} s; killed") from None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(30)

    def freeze(self) -> None:
        """SIGSTOP: the process holds its sockets but answers nothing (a stalled host)."""
        assert self.proc is not None and self.alive, f"{self.name} not running"
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None and self.alive, f"{self.name} not running"
        self.proc.send_signal(signal.SIGCONT)

    def restart(self, timeout: float = 60.0) -> None:
        """Kill whatever runs (if anything), start again on the same port."""
        self.kill()
        self.start(timeout)

    def close(self) -> None:
        """Kill if still running; close the log."""
        self.kill()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CollectorProc(Proc):
    """``consent-mw collector`` on ``store_dir`` (an embedded chDB store)."""

    name = "collector"
    ready_path = "/healthz"

    def __init__(self, store_dir: Path, *, port: int | None = None, cpu: int | None = None,
                 log: Path | None = None, token: str = TOKEN,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(port=port, cpu=cpu, log=log)
        self.store_dir = Path(store_dir)
        self.token = token
        self.env = dict(env or {})

    def command(self) -> list[str]:
        return [sys.executable, "-m", "consent_mw_cli", "collector", "--port", str(self.port),
                "--store", f"chdb://{self.store_dir}", "--log-level", "warning"]

    def environment(self) -> dict[str, str]:
        return _env({"CONSENT_MW_COLLECTOR_TOKEN": self.token, **self.env})


class WebProc(Proc):
    """uvicorn serving ``bench.drill_app`` to ``collector_url``, spooling into ``spool_dir``.

    ``env`` adds or overrides ``CONSENT_MW_*`` settings (``CONSENT_MW_QUEUE_SIZE``...) and
    ``DRILL_SPOOL_FS_BYTES``.
    """

    name = "web"
    ready_path = "/_drill/stats"  # not captured: a probe of "/" would be an anonymous count

    def __init__(self, spool_dir: Path, collector_url: str, *, port: int | None = None,
                 cpu: int | None = None, log: Path | None = None, token: str = TOKEN,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(port=port, cpu=cpu, log=log)
        self.spool_dir = Path(spool_dir)
        self.settings_env = {
            "CONSENT_MW_SECRET_KEY": SECRET,
            "CONSENT_MW_COLLECTOR_URL": collector_url,
            "CONSENT_MW_COLLECTOR_TOKEN": token,
            "CONSENT_MW_SPOOL_DIR": str(self.spool_dir),
            **(env or {}),
        }

    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "bench.drill_app:app", "--factory",
                "--host", "127.0.0.1", "--port", str(self.port), "--http", "httptools",
                "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
                "--lifespan", "on"]

    def environment(self) -> dict[str, str]:
        return _env(self.settings_env)

    def stats(self, timeout: float = 5.0) -> dict[str, Any]:
        """``ConsentMiddleware.stats()`` of the running process."""
        stats: dict[str, Any] = get_json(self.url + "/_drill/stats", timeout)
        return stats

    def consent_cookie(self, address: str | None = None) -> str:
        """Accept all through the real endpoint; the Cookie header a browser would send.
        ``address``: the visitor's, as a proxy in front forwards it."""
        headers = {"Content-Type": "application/json", "Origin": self.url}
        if address is not None:
            headers["X-Forwarded-For"] = address
        req = urllib.request.Request(
            self.url + "/_consent", data=json.dumps({"action": "accept_all"}).encode(),
            headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            cookies = [h.split(";", 1)[0] for h in resp.headers.get_all("Set-Cookie") or []]
        if not cookies:
            raise RuntimeError("accept_all set no cookie")
        return "; ".join(cookies)


# --- what a store and a spool hold ----------------------------------------------------------

_QUERY = """
import json, sys
from collector.store import Store
store = Store("chdb://" + sys.argv[1])
try:
    rows = store.rows(sys.argv[2])
finally:
    store.close()
sys.stdout.write("\\n" + json.dumps([list(r) for r in rows], default=str) + "\\n")
"""


def query_store(store_dir: Path, sql: str, timeout: float = 120.0) -> list[list[Any]]:
    """Rows of ``sql`` on the chDB store at ``store_dir``, read in a subprocess. The store
    must not be open elsewhere (stop the collector first)."""
    out = subprocess.run([sys.executable, "-c", _QUERY, str(store_dir), sql], cwd=ROOT,
                         env=_env({}), capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"store query failed: {out.stderr[-2000:]}")
    rows: list[list[Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return rows


def stored_paths(store_dir: Path, prefix: str = "/") -> Counter[str]:
    """Rows per path in ``events``: physical rows (no FINAL, no dedup), so a duplicate shows
    as a count of 2."""
    rows = query_store(store_dir, "SELECT path, count() FROM events "
                                  f"WHERE startsWith(path, '{_literal(prefix)}') GROUP BY path")
    return Counter({str(path): int(n) for path, n in rows})


def stored_consents(store_dir: Path) -> Counter[str]:
    """Rows per consent id in ``consent_records`` (physical rows, as above)."""
    rows = query_store(store_dir, "SELECT consent_id, count() FROM consent_records "
                                  "GROUP BY consent_id")
    return Counter({str(cid): int(n) for cid, n in rows})


def _literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


@dataclass
class SpoolContents:
    """A spool directory as a killed process left it."""

    paths: Counter[str] = field(default_factory=Counter)  # event paths in the batch files
    records: int = 0  # consent records in the batch files
    files: int = 0  # batch files (``*.spool``, claimed ones included)
    tmp_files: list[str] = field(default_factory=list)  # ``.tmp-*``: half-written batches
    unreadable: list[str] = field(default_factory=list)
    bytes: int = 0


def spool_contents(spool_dir: Path) -> SpoolContents:
    """Read every batch file in ``spool_dir`` (gzip JSON with ``events`` and
    ``consent_records``), claimed files too (a replay renames a file it is sending)."""
    found = SpoolContents()
    if not spool_dir.exists():
        return found
    for path in sorted(spool_dir.iterdir()):
        if not path.is_file():
            continue
        found.bytes += path.stat().st_size
        if path.name.startswith(".tmp-"):
            found.tmp_files.append(path.name)
            continue
        if SUFFIX not in path.name:
            continue
        try:
            data = json.loads(gzip.decompress(path.read_bytes()))
        except (OSError, ValueError, EOFError):
            found.unreadable.append(path.name)
            continue
        found.files += 1
        found.paths.update(str(e.get("path")) for e in data.get("events", []))
        found.records += len(data.get("consent_records", []))
    return found
