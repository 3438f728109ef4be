"""A web process's worth of traffic: posts batches to a collector until told to stop.

Usage: traffic.py URL TOKEN TARGET_VISITOR OTHERS STOP_FILE. Prints {"sent": {visitor: n}}
counting only events in batches the collector answered 200.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import httpx

from consent_mw.wire import encode_batch


def main() -> None:
    url, token, target, others, stop = sys.argv[1:6]
    visitors = [target] + [uuid.uuid4().hex for _ in range(int(others))]
    sent = dict.fromkeys(visitors, 0)
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
               "Content-Type": "application/json"}
    with httpx.Client(timeout=30) as client:
        while not Path(stop).exists():
            now = int(time.time() * 1000)
            events = [{"event_id": str(uuid.uuid4()), "ts": now, "kind": "pageview",
                       "name": "pageview", "consent": {"analytics": True},
                       "host": "clinic.test", "path": f"/p{i}", "status": 200,
                       "visitor_id": v} for i, v in enumerate(visitors)]
            resp = client.post(url + "/v1/events", headers=headers,
                               content=encode_batch(events, batch_id=str(uuid.uuid4()),
                                                    sent_at=now))
            if resp.status_code == 200:
                for v in visitors:
                    sent[v] += 1
            time.sleep(0.02)
    print(json.dumps({"sent": sent}))


if __name__ == "__main__":
    main()
