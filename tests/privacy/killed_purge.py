"""Start a purge on a fresh store and SIGKILL this process at the named step.

Usage: killed_purge.py STORE_DIR STEP. Prints the planted ids as JSON before the purge.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from support.privacy import KEY, insert_events, insert_record, vid

from collector.ddl.migrations import apply_migrations
from collector.ddl.tables import DdlOptions
from collector.privacy.operations import Privacy
from collector.store import Store
from consent_mw.ids import hash_user_id


def main() -> None:
    path, step = sys.argv[1], sys.argv[2]
    store = Store(f"chdb://{path}")
    apply_migrations(store, DdlOptions())
    v1, v2, other = vid(), vid(), vid()
    uid = hash_user_id(KEY, "killed-acct")
    insert_events(store, 30, visitor_id=v1, user_id=uid, consent_id="cid-" + v1)
    insert_events(store, 20, visitor_id=v2, consent_id="cid-" + v2)
    insert_events(store, 1, visitor_id=v2, user_id=uid)
    insert_events(store, 9, visitor_id=other)
    insert_record(store, visitor_id=v1, consent_id="cid-" + v1)
    print(json.dumps({"ids": [v1, v2, uid, "cid-" + v1, "cid-" + v2], "other": other}),
          flush=True)

    def progress(name: str) -> None:
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    Privacy(store, KEY).purge(user_id="killed-acct", progress=progress)


if __name__ == "__main__":
    main()
