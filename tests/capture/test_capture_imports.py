"""A web process that streams to a collector never loads the ClickHouse drivers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib, json, pkgutil, sys
import consent_mw
# every module of the package, the middleware included: any of them could pull the driver in
for info in pkgutil.walk_packages(consent_mw.__path__, "consent_mw."):
    importlib.import_module(info.name)
from consent_mw.capture import pipeline as capture
from consent_mw.capture import transport
from consent_mw.config import Secret
from consent_mw.settings import Settings
from consent_mw.state import ConsentState, RequestContext

settings = Settings(secret_keys=(Secret("x" * 32),), collector_url="http://127.0.0.1:9",
                    spool_dir=sys.argv[1])
cap = capture.Capture(settings, retry=transport.RetryPolicy(base=0.1))
assert isinstance(cap.transport, transport.HttpTransport)
cap.start()
state = ConsentState(decided=True, categories={"necessary": True, "analytics": True})
ctx = RequestContext(settings=settings, state=state, locale="ja", visitor_id="a" * 32,
                     capture=cap)
cap.page(ctx, {"type": "http", "path": "/", "headers": [(b"user-agent", b"Mozilla/5.0")],
               "client": ("127.0.0.1", 1)}, 200)
cap.force_flush(5)
cap.shutdown(5)
print(json.dumps({"loaded": sorted(m for m in ("chdb", "clickhouse_connect")
                                   if m in sys.modules),
                  "spooled": cap.stats()["spooled"]}))
"""


def test_capture_with_http_transport_never_imports_chdb(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["spooled"] == 1  # the pipeline really ran (collector unreachable: spooled)
    assert result["loaded"] == []
