"""The web process of the fault drills (``bench/drills.py``): a hello-world page app behind
``ConsentMiddleware``, configured from ``CONSENT_MW_*`` like a deployed site.

    uvicorn --factory bench.drill_app:app --http httptools --loop uvloop

Every path answers 200 with a small page, so each request can carry a path of its own and be
traced to its row. ``GET /_drill/stats`` is answered before the middleware (so it is never
captured): ``ConsentMiddleware.stats()`` as JSON.

``DRILL_SPOOL_FS_BYTES``: a full disk without a tmpfs (a CI machine that cannot mount one).
The spool then writes through :func:`quota_writer`, which fails with ``ENOSPC`` once the
spool directory would hold more than that many bytes, after writing part of the file, as a
full disk does.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.overhead_app import bare
from consent_mw import ConsentMiddleware
from consent_mw.capture.pipeline import Capture
from consent_mw.capture.spool import DiskSpool
from consent_mw.settings import Settings
from consent_mw.types import ASGIApp, Receive, Scope, Send

STATS_PATH = "/_drill/stats"
FS_BYTES_ENV = "DRILL_SPOOL_FS_BYTES"
#: The overhead bench's hello-world page app: 200 and the same small page for every path.
page = bare


def _used(directory: Path) -> int:
    total = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue  # renamed or removed meanwhile
    return total


def quota_writer(limit: int) -> Callable[[Path, bytes], None]:
    """A spool ``write(path, data)`` on a disk of ``limit`` bytes: creates ``path`` with
    ``data`` and fsyncs it, or, when the directory's files and ``data`` would exceed
    ``limit``, writes what fits and raises ``OSError(ENOSPC)``, leaving the partial file."""

    def write(path: Path, data: bytes) -> None:
        room = limit - _used(path.parent)
        with open(path, "wb") as fh:
            fh.write(data[:max(0, room)])
            fh.flush()
            os.fsync(fh.fileno())
        if len(data) > room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    return write


def _capture(settings: Settings) -> Capture | None:
    """The capture with a quota-limited spool, when ``DRILL_SPOOL_FS_BYTES`` asks for one;
    otherwise None, and the middleware builds its own as a site's would."""
    limit = os.environ.get(FS_BYTES_ENV)
    if not limit:
        return None
    if settings.spool_dir is None or not settings.collector_url:
        raise SystemExit(f"{FS_BYTES_ENV} needs CONSENT_MW_SPOOL_DIR and a collector URL")
    spool = DiskSpool(settings.spool_dir, settings.spool_max_bytes,
                      write=quota_writer(int(limit)))
    return Capture(settings, spool=spool)


def app() -> ASGIApp:
    """The factory uvicorn calls: the page app behind the middleware, plus the stats route."""
    settings = Settings.from_env()
    mw = ConsentMiddleware(page, settings=settings, capture=_capture(settings))

    async def drill(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == STATS_PATH:
            stats: dict[str, Any] = mw.stats()
            body = json.dumps(stats).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": body})
            return
        await mw(scope, receive, send)

    return drill
