"""Suppress, purge and export against the real chDB engine, without the HTTP layer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.privacy import KEY, insert_events, insert_record, vid

from collector.ddl.migrations import apply_migrations
from collector.ddl.tables import DdlOptions
from collector.privacy import audit
from collector.privacy.disk_scan import scan_directory
from collector.privacy.operations import Privacy
from collector.privacy.subjects import PrivacyError
from collector.query.sql import not_suppressed
from collector.store import Store
from consent_mw.ids import hash_user_id

HERE = Path(__file__).parent


def visible_counts(store: Any) -> dict[str, int]:
    """A dashboard-style query that applies the one suppression rule."""
    rows = store.rows("SELECT visitor_id, count() FROM events WHERE "
                      f"{not_suppressed('events', None)} GROUP BY visitor_id")
    return {str(v): int(n) for v, n in rows}


def test_suppression_hides_rows_from_dashboards_keeps_them_and_unsuppress_restores(
    privacy: Privacy, store: Any
) -> None:
    target, other = vid(), vid()
    insert_events(store, 5, visitor_id=target)
    insert_events(store, 3, visitor_id=other)

    privacy.suppress(visitor_id=target, reason="complaint", requested_by="dpo")
    assert privacy.is_suppressed("visitor_id", target)
    assert not privacy.is_suppressed("visitor_id", other)
    assert visible_counts(store) == {other: 3}
    assert len(privacy.export(visitor_id=target)["events"]) == 5  # kept, only hidden

    privacy.unsuppress(visitor_id=target, reason="resolved", requested_by="dpo")
    assert not privacy.is_suppressed("visitor_id", target)
    assert visible_counts(store) == {other: 3, target: 5}


def test_suppression_survives_a_restart_of_the_in_memory_list(privacy: Privacy,
                                                              store: Any) -> None:
    target = vid()
    privacy.suppress(visitor_id=target)
    fresh = Privacy(store, KEY)
    fresh.load()
    assert fresh.is_suppressed("visitor_id", target)
    assert fresh.suppression_list()["hashes"] == privacy.suppression_list()["hashes"]


def test_purge_deletes_rows_anonymises_consent_records_and_leaves_no_file_with_the_id(
    privacy: Privacy, store: Any
) -> None:
    target, other, cid = vid(), vid(), "cid-" + vid()
    insert_events(store, 40, visitor_id=target, consent_id=cid)
    insert_events(store, 7, visitor_id=other)
    insert_record(store, visitor_id=target, consent_id=cid)
    insert_record(store, visitor_id=other, consent_id="cid-other")
    assert store.path is not None
    # The scan must be able to see the id before the purge, or its silence proves nothing.
    assert scan_directory(store.path, [target]).matches

    receipt = privacy.purge(visitor_id=target, reason="Art. 6 request", requested_by="dpo")

    assert receipt["remaining"] == 0
    assert receipt["rows_deleted"]["events"] == 40
    assert receipt["rows_deleted"]["consent_records"] == 1
    assert receipt["file_scan"]["matches"] == []
    assert receipt["file_scan"]["blocks_opaque"] == 0
    assert scan_directory(store.path, [target, cid]).matches == []
    assert store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                        {"v": target}) == 0
    assert store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                        {"v": other}) == 7
    # The decision stays as proof of consent, without the link to the person.
    kept = store.dicts("SELECT visitor_id, consent_id, anonymised, event, policy_version "
                       "FROM consent_records ORDER BY anonymised")
    assert [(r["visitor_id"], r["anonymised"]) for r in kept] == [(other, False), ("", True)]
    assert kept[1]["event"] == "decided" and kept[1]["policy_version"]
    # Still suppressed by hash, so late events keep being dropped.
    assert privacy.is_suppressed("visitor_id", target)
    stored = store.dicts("SELECT * FROM purge_receipts")
    assert len(stored) == 1 and stored[0]["remaining"] == 0
    assert target not in str(stored) and target not in str(audit.listing(store))


def test_user_id_purge_covers_every_linked_visitor(privacy: Privacy, store: Any) -> None:
    v1, v2, stranger = vid(), vid(), vid()
    uid_hash = hash_user_id(KEY, "patient-42")
    insert_events(store, 3, visitor_id=v1)
    insert_events(store, 1, visitor_id=v1, user_id=uid_hash)  # identify on browser 1
    insert_events(store, 4, visitor_id=v2)
    insert_events(store, 1, visitor_id=v2, user_id=uid_hash)  # identify on browser 2
    insert_events(store, 6, visitor_id=stranger)

    exported = privacy.export(user_id="patient-42")
    assert sorted(exported["subject"]["visitor_ids"]) == sorted([v1, v2])
    assert len(exported["events"]) == 9

    receipt = privacy.purge(user_id="patient-42", reason="account closed", requested_by="dpo")

    assert receipt["rows_deleted"]["events"] == 9
    assert len(receipt["subject_hashes"]) == 3  # two visitors and the account
    assert receipt["remaining"] == 0
    assert privacy.export(visitor_id=v1)["events"] == []
    assert privacy.export(visitor_id=v2)["events"] == []
    assert len(privacy.export(visitor_id=stranger)["events"]) == 6
    assert privacy.is_suppressed("visitor_id", v2)
    assert privacy.is_suppressed("user_id", uid_hash)


def test_an_account_never_reaches_another_accounts_pages_on_a_shared_browser(
        privacy: Privacy, store: Any) -> None:
    # One browser, two accounts: a family computer, or a login forced on the victim's
    # browser. The attacker's own request must not carry the victim's pages with it.
    shared, own = vid(), vid()
    attacker, victim = hash_user_id(KEY, "attacker-1"), hash_user_id(KEY, "victim-2")
    insert_events(store, 1, visitor_id=shared, user_id=attacker, consent_id="cid-shared")
    insert_events(store, 2, visitor_id=shared, user_id=victim, consent_id="cid-shared",
                  path="/clinic/hiv-testing")
    insert_events(store, 3, visitor_id=shared, consent_id="cid-shared")  # nobody logged in
    insert_events(store, 4, visitor_id=own, user_id=attacker)
    insert_events(store, 5, visitor_id=own)

    exported = privacy.export(user_id="attacker-1")
    assert exported["subject"]["visitor_ids"] == [own]
    assert sorted(e["user_id"] for e in exported["events"]).count(attacker) == 5
    assert len(exported["events"]) == 10
    assert not any(e["path"] == "/clinic/hiv-testing" for e in exported["events"])

    receipt = privacy.purge(user_id="attacker-1", reason="account closed", requested_by="dpo")
    assert receipt["rows_deleted"]["events"] == 10
    assert not privacy.is_suppressed("visitor_id", shared)
    left = privacy.export(visitor_id=shared)["events"]
    assert sorted(e["user_id"] for e in left) == ["", "", "", victim, victim]


def test_unknown_id_gives_an_empty_export_and_a_zero_row_receipt(privacy: Privacy) -> None:
    data = privacy.export(visitor_id=vid())
    assert (data["events"], data["consent_records"], data["receipts"]) == ([], [], [])
    receipt = privacy.purge(visitor_id=vid(), reason="check", requested_by="dpo")
    assert receipt["rows_deleted"] == {"events": 0, "consent_records": 0, "suppressions": 0}
    assert receipt["remaining"] == 0


def test_second_purge_is_idempotent(privacy: Privacy, store: Any) -> None:
    target = vid()
    insert_events(store, 12, visitor_id=target)
    first = privacy.purge(visitor_id=target)
    second = privacy.purge(visitor_id=target)
    assert first["rows_deleted"]["events"] == 12
    assert second["rows_deleted"] == {"events": 0, "consent_records": 0, "suppressions": 0}
    assert second["remaining"] == 0
    assert len(privacy.export(visitor_id=target)["receipts"]) == 2


@pytest.mark.parametrize("kwargs", [
    {}, {"visitor_id": "a" * 32, "user_id": "u1"}, {"visitor_id": "not an id!"},
    {"user_id": "x" * 65},
])
def test_malformed_or_ambiguous_ids_are_refused(privacy: Privacy, kwargs: dict[str, Any]
                                                ) -> None:
    with pytest.raises(PrivacyError):
        privacy.purge(**kwargs)


def test_interrupted_purge_is_found_and_finished_by_resuming_it(
    privacy: Privacy, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1, v2 = vid(), vid()
    uid_hash = hash_user_id(KEY, "acct-7")
    insert_events(store, 2, visitor_id=v1, user_id=uid_hash)
    insert_events(store, 5, visitor_id=v2, user_id=uid_hash)
    real = store.command

    def crash_on_rewrite(sql: str, *args: Any, **kw: Any) -> Any:
        if "APPLY DELETED MASK" in sql:
            raise RuntimeError("killed mid-purge")
        return real(sql, *args, **kw)

    monkeypatch.setattr(store, "command", crash_on_rewrite)
    with pytest.raises(RuntimeError):
        privacy.purge(user_id="acct-7")
    monkeypatch.setattr(store, "command", real)
    assert len(privacy.pending_purges()) == 1
    # The events are already hidden, so only the suppression rows still link v1/v2 to acct-7.
    receipts = privacy.resume_pending()
    assert [r["remaining"] for r in receipts] == [0]
    assert privacy.pending_purges() == []
    assert store.path is not None
    assert scan_directory(store.path, [v1, v2, uid_hash]).matches == []
    assert privacy.is_suppressed("visitor_id", v1) and privacy.is_suppressed("visitor_id", v2)


def test_hash_chain_detects_an_edited_row(privacy: Privacy, store: Any) -> None:
    for _ in range(3):
        privacy.suppress(visitor_id=vid(), reason="r", requested_by="dpo")
    assert audit.verify_chain(store).ok
    store.command("ALTER TABLE privacy_requests UPDATE requested_by = 'someone else' "
                  "WHERE seq = 2", settings={"mutations_sync": 2})
    report = audit.verify_chain(store)
    assert not report.ok
    assert report.problems[0] == {"seq": 2, "problem": "row_edited"}


def test_hash_chain_detects_a_deleted_row(privacy: Privacy, store: Any) -> None:
    for _ in range(3):
        privacy.suppress(visitor_id=vid())
    store.command("ALTER TABLE privacy_requests DELETE WHERE seq = 2",
                  settings={"mutations_sync": 2})
    problems = {p["problem"] for p in audit.verify_chain(store).problems}
    assert {"gap_or_duplicate", "broken_link"} <= problems


@pytest.mark.slow
@pytest.mark.parametrize("step", ["anonymising consent records", "rewriting parts",
                                  "removing outdated parts"])
def test_purge_killed_midway_is_finished_after_a_restart(tmp_path: Path, step: str) -> None:
    path = tmp_path / "store.chdb"
    child = subprocess.run([sys.executable, str(HERE / "killed_purge.py"), str(path), step],
                           capture_output=True, text=True, cwd=HERE, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    assert child.returncode == -signal.SIGKILL, child.stderr
    planted = json.loads(child.stdout)

    store = Store(f"chdb://{path}")  # the restart: the dead process's files, as left
    try:
        apply_migrations(store, DdlOptions())
        privacy = Privacy(store, KEY, cleanup_timeout=30)
        privacy.load()
        assert len(privacy.pending_purges()) == 1
        receipts = privacy.resume_pending()
        assert [r["remaining"] for r in receipts] == [0]
        # Killed after the raw ids left the store: verified by query on their SHA-256 only.
        assert (receipts[0]["file_scan"] is None) == (step == "removing outdated parts")
        assert privacy.pending_purges() == []
        assert scan_directory(path, planted["ids"]).matches == []
        assert store.scalar("SELECT count() FROM events") == 9  # the other visitor's
        assert audit.verify_chain(store).ok
    finally:
        store.close()
