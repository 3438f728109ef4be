"""Privacy requests end to end: a real collector served by uvicorn on a real chDB store, a real
SMTP server receiving the mail, and the codes read from the mail it received."""

from __future__ import annotations

import hashlib
import io
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support.privacy import ADMIN, STAFF, STAFF_TOKEN, insert_events, vid
from support.servers import free_port, serve

from clinic.mailbox import Mailbox, Received
from collector.requests import codes

PERSON = "hanako@example.jp"
WEB = {"Authorization": f"Bearer {ADMIN}"}  # what a web process passes a form on with
STAFF_AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}


@pytest.fixture
def desk_live(collector_settings: Callable[..., Any], mailbox: Mailbox) -> Iterator[Any]:
    """A collector with SMTP pointed at the mailbox, served by uvicorn in this process."""
    from collector.service import CollectorService

    svc = CollectorService(collector_settings(
        smtp_host="127.0.0.1", smtp_port=mailbox.port, smtp_starttls=False,
        requests_url="http://clinic.test/_consent/requests/status",
        privacy_staff_email="privacy@clinic.test"))
    served = serve(svc.app)
    svc.http = httpx.Client(base_url=served.url, timeout=60)  # type: ignore[attr-defined]
    try:
        yield svc
    finally:
        svc.http.close()
        served.stop()


def submit(svc: Any, **fields: Any) -> str:
    body = {"kind": "disclosure", "email": PERSON, "lang": "ja", **fields}
    answer = svc.http.post("/v1/requests", json=body, headers=WEB)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["ref"])


def code_from(mail: Received) -> str:
    found = re.search(r"\b(\d{6})\b", mail.text)
    assert found, mail.text
    return found.group(1)


def code_mail(mailbox: Mailbox, ref: str, *, after: Received | None = None) -> Received:
    """The code mail of request ``ref`` (its acknowledgement names the ref too, and may come
    first), arrived after ``after`` if given."""
    return mailbox.wait_for(PERSON, f"{ref}】確認コード", after=after)


def check(svc: Any, ref: str, code: str) -> dict[str, Any]:
    answer = svc.http.post(f"/v1/requests/{ref}/code/check", json={"code": code}, headers=WEB)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def act(svc: Any, ref: str, action: str, **body: Any) -> httpx.Response:
    return svc.http.post(f"/v1/requests/{ref}/{action}", json=body, headers=STAFF_AUTH)


def audit_rows(svc: Any, ref: str) -> list[dict[str, Any]]:
    return [r for r in svc.store.dicts("SELECT operation, requested_by, details FROM "
                                       "privacy_requests ORDER BY seq") if ref in r["details"]]


def test_a_disclosure_from_form_to_mail_with_the_export(desk_live: Any,
                                                        mailbox: Mailbox) -> None:
    svc = desk_live
    visitor = vid()
    insert_events(svc.store, 3, visitor_id=visitor, path="/treatments/hyaluronic")
    insert_events(svc.store, 2, visitor_id=vid())  # someone else's: never in the export
    ref = submit(svc, visitor_ids=[visitor])

    ack = mailbox.wait_for(PERSON, "受け付けました")
    stored_mail = svc.store.rows("SELECT recipient, body FROM rights_mail")
    assert stored_mail and not any(PERSON in str(r) or ref in r[1] for r in stored_mail)
    assert ref in ack.subject and "1,000 円" in ack.text  # the fee is stated
    assert "http://clinic.test/_consent/requests/status?ref=" + ref in ack.text
    code = code_from(mailbox.wait_for(PERSON, "確認コード"))
    stored = svc.http.get(f"/v1/requests/{ref}", headers=STAFF_AUTH).json()
    assert code not in str(stored)  # the store keeps neither the code nor its mail's copy

    assert act(svc, ref, "complete").status_code == 409  # not verified yet
    verdict = check(svc, ref, code)
    assert verdict["verdict"] == "ok" and verdict["request"]["status"] == "verified"

    refused = act(svc, ref, "complete")
    assert refused.status_code == 409 and refused.json()["error"] == "fee_due"
    assert svc.http.post(f"/v1/requests/{ref}/fee", json={"state": "paid"},
                         headers=STAFF_AUTH).status_code == 200
    done = act(svc, ref, "complete", note="開示します", wait=True)
    assert done.status_code == 200 and done.json()["status"] == "completed"

    mail = mailbox.wait_for(PERSON, "完了")
    assert "開示します" in mail.text
    (name, data), = mail.attachments
    assert name == f"my-data-{ref}.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as pack:
        events = pack.read("01-visitor_id/events.csv").decode()
    assert events.count("/treatments/hyaluronic") == 3 and events.count("\n") == 4
    result, = done.json()["results"]
    assert result["events"] == 3 and result["zip_sha256"] == hashlib.sha256(data).hexdigest()

    trail = audit_rows(svc, ref)
    ops = [r["operation"] for r in trail]
    assert ops[:2] == ["request.submitted", "request.verified"]
    assert {"request.fee", "request.completing", "request.completed"} <= set(ops)
    assert all(r["requested_by"] == STAFF for r in trail
               if r["operation"] in ("request.fee", "request.completed"))
    exported = svc.store.dicts("SELECT requested_by, reason FROM privacy_requests "
                               "WHERE operation = 'export'")
    assert exported == [{"requested_by": STAFF, "reason": f"privacy request {ref}"}]
    assert svc.privacy.store is svc.store and svc.store.scalar(
        "SELECT count() FROM events") == 5  # a disclosure deletes nothing


def test_a_deletion_purges_every_linked_id_and_mails_the_receipt(desk_live: Any,
                                                                 mailbox: Mailbox) -> None:
    svc = desk_live
    mine, found_later, other = vid(), vid(), vid()
    for v in (mine, found_later, other):
        insert_events(svc.store, 4, visitor_id=v)
    ref = submit(svc, kind="deletion", visitor_ids=[mine], lang="en")
    assert check(svc, ref, code_from(mailbox.wait_for(PERSON, "code")))["verdict"] == "ok"
    assert svc.http.post(f"/v1/requests/{ref}/link", json={"visitor_id": found_later},
                         headers=STAFF_AUTH).status_code == 400  # a link needs a reason
    linked = svc.http.post(f"/v1/requests/{ref}/link", headers=STAFF_AUTH, json={
        "visitor_id": found_later, "note": "same device, shown at the counter"})
    assert linked.status_code == 200
    assert act(svc, ref, "start").json()["status"] == "in_progress"
    done = act(svc, ref, "complete", wait=True).json()
    assert done["status"] == "completed"
    assert [r["remaining"] for r in done["results"]] == [0, 0]
    left = svc.store.rows("SELECT visitor_id, count() FROM events GROUP BY visitor_id")
    assert left == [(other, 4)]
    mail = mailbox.wait_for(PERSON, "completed")
    assert "8 records deleted" in mail.text and not mail.attachments


def test_no_operation_runs_on_an_unverified_request(desk_live: Any, mailbox: Mailbox,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    svc = desk_live
    visitor = vid()
    insert_events(svc.store, 2, visitor_id=visitor)
    ref = submit(svc, kind="deletion", visitor_ids=[visitor])
    first = code_mail(mailbox, ref)
    code = code_from(first)
    for action in ("start", "complete"):
        answer = act(svc, ref, action)
        assert answer.status_code == 409 and answer.json()["error"] == "unverified"

    # A duplicate request is its own request: its code verifies it, never the first.
    dup = submit(svc, kind="deletion", visitor_ids=[visitor])
    dup_code = code_from(code_mail(mailbox, dup))
    assert check(svc, ref, dup_code)["verdict"] == "wrong"
    assert check(svc, dup, dup_code)["verdict"] == "ok"
    assert act(svc, ref, "complete").status_code == 409

    # Brute force: five wrong tries (the duplicate's code was the first) spend the code; the
    # right one then opens nothing.
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    verdicts = [check(svc, ref, wrong)["verdict"] for _ in range(codes.MAX_TRIES)]
    assert verdicts == ["wrong"] * (codes.MAX_TRIES - 1) + ["too_many"]
    assert check(svc, ref, code)["verdict"] == "too_many"
    assert svc.http.get(f"/v1/requests/{ref}", headers=STAFF_AUTH).json()["status"] \
        == "received"

    # A new code is limited in time: an expired one opens nothing either.
    real_now = time.time
    monkeypatch.setattr(time, "time", lambda: real_now() + 61)  # past the resend pause
    assert svc.http.post(f"/v1/requests/{ref}/code", headers=WEB).json()["sent"] is True
    fresh = code_from(code_mail(mailbox, ref, after=first))
    monkeypatch.setattr(time, "time", lambda: real_now() + 61 + codes.TTL_MS / 1000 + 1)
    assert check(svc, ref, fresh)["verdict"] == "expired"
    monkeypatch.setattr(time, "time", real_now)

    assert svc.store.scalar("SELECT count() FROM events") == 2  # nothing was purged
    ops = {r[0] for r in svc.store.rows("SELECT operation FROM privacy_requests")}
    assert not ops & {"purge", "export", "suppress"}


def test_every_entry_of_a_timeline_has_its_own_number(desk_live: Any,
                                                      mailbox: Mailbox) -> None:
    svc = desk_live
    ref = submit(svc, kind="suspension")
    check(svc, ref, code_from(code_mail(mailbox, ref)))
    seqs = [e.seq for e in svc.desk.log.entries(ref)]
    assert len(seqs) >= 5 and seqs == list(range(1, len(seqs) + 1))


def test_a_code_works_once(desk_live: Any, mailbox: Mailbox) -> None:
    svc = desk_live
    ref = submit(svc, kind="suspension", visitor_ids=[vid()])
    code = code_from(mailbox.wait_for(PERSON, "確認コード"))
    assert check(svc, ref, code)["verdict"] == "ok"
    again = check(svc, ref, code)
    assert again["verdict"] == "no_code" and "request" not in again


def test_an_account_of_another_email_stays_unverified(desk_live: Any,
                                                      mailbox: Mailbox) -> None:
    svc = desk_live
    ref = submit(svc, kind="deletion", account_id="member-42",
                 account_email="someone.else@example.jp")
    verdict = check(svc, ref, code_from(mailbox.wait_for(PERSON, "確認コード")))
    assert verdict["verdict"] == "ok" and verdict["request"]["status"] == "received"
    assert act(svc, ref, "complete").json()["error"] == "unverified"
    view = svc.http.get(f"/v1/requests/{ref}", headers=STAFF_AUTH).json()
    assert view["account_match"] is False and view["subjects"] == []


def test_staff_verify_by_other_means_needs_a_note_and_is_audited(desk_live: Any) -> None:
    svc = desk_live
    ref = submit(svc, kind="suspension", channel="phone", visitor_ids=[vid()])
    assert act(svc, ref, "verify").json()["error"] == "note_required"
    ok = act(svc, ref, "verify", note="保険証を窓口で確認")
    assert ok.status_code == 200 and ok.json()["verified_by"] == "staff"
    row, = [r for r in audit_rows(svc, ref) if r["operation"] == "request.verified"]
    assert row["requested_by"] == STAFF and '"by":"staff"' in row["details"]


def test_an_overdue_request_is_flagged_and_mailed_to_the_staff(
        desk_live: Any, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = desk_live
    ref = submit(svc, kind="suspension", visitor_ids=[vid()])
    act(svc, ref, "verify", note="seen at the counter")
    assert svc.http.get("/v1/requests?overdue=1", headers=STAFF_AUTH).json()["requests"] == []
    real_now = time.time
    monkeypatch.setattr(time, "time", lambda: real_now() + 31 * 86400)
    late = svc.http.get("/v1/requests?overdue=1", headers=STAFF_AUTH).json()["requests"]
    assert [r["ref"] for r in late] == [ref] and late[0]["overdue"] is True
    assert svc.desk.overdue_digest("http://clinic.test/dashboards/requests") == 1
    svc.desk.outbox.kick()
    digest = mailbox.wait_for("privacy@clinic.test", "期限超過")
    assert ref in digest.text and "/dashboards/requests" in digest.text


def test_a_request_whose_submission_aged_out_is_gone_not_an_error(
        desk_live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each row expires requests_ttl after its own time, so an old request loses its
    # submission days before its last entries: what is left must not break the queue, the
    # person's status or the mail round.
    svc = desk_live
    old, kept = submit(svc, kind="suspension"), submit(svc, kind="suspension")
    for ref in (old, kept):
        act(svc, ref, "verify", note="seen at the counter")
    svc.store.command("ALTER TABLE rights_requests DELETE WHERE ref = {r:String} AND "
                      "action = 'submitted'", {"r": old}, settings={"mutations_sync": 2})
    queue = svc.http.get("/v1/requests", headers=STAFF_AUTH)
    assert queue.status_code == 200, queue.text
    assert [r["ref"] for r in queue.json()["requests"]] == [kept]
    assert svc.http.get(f"/v1/requests/{old}", headers=STAFF_AUTH).status_code == 404
    real_now = time.time  # a day the digest has not run yet, with both requests overdue
    monkeypatch.setattr(time, "time", lambda: real_now() + 31 * 86400)
    assert svc.desk.overdue_digest("http://clinic.test/dashboards/requests") == 1


def test_a_failing_digest_never_holds_back_a_persons_mail(
        desk_live: Any, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    def digest() -> None:
        raise RuntimeError("the digest's query failed")

    monkeypatch.setattr(desk_live.desk.outbox, "after_round", digest)
    ref = submit(desk_live, kind="suspension")
    desk_live.desk.outbox.kick()
    assert code_from(code_mail(mailbox, ref))


def test_a_mail_that_cannot_be_sent_is_retried_and_shown(
        collector_settings: Callable[..., Any]) -> None:
    from collector.service import CollectorService

    svc = CollectorService(collector_settings(smtp_host="127.0.0.1", smtp_port=free_port(),
                                              smtp_starttls=False))
    svc.start()
    try:
        request = svc.desk.submit(kind="suspension", email=PERSON, visitor_ids=(vid(),))
        svc.desk.outbox.send_due()
        mails = svc.desk.mails(request.ref)
        assert {m.template for m in mails} == {"acknowledgement", "code"}
        assert all(m.status == "retrying" and m.attempts == 1 and m.last_error
                   for m in mails)
    finally:
        svc.stop()


def test_too_many_requests_for_one_mailbox_however_it_is_spelt(desk_live: Any) -> None:
    svc = desk_live
    for _ in range(3):
        submit(svc, kind="suspension")
    for spelling in (PERSON.upper(), "hanako+again@example.jp"):
        answer = svc.http.post("/v1/requests", headers=WEB,
                               json={"kind": "suspension", "email": spelling})
        assert answer.status_code == 429 and answer.json()["error"] == "too_many_requests"
    for trick in ("(1)hanako@example.jp", "x:hanako@example.jp", "hanako@example.jp>"):
        answer = svc.http.post("/v1/requests", headers=WEB,
                               json={"kind": "suspension", "email": trick})
        assert answer.status_code == 400 and answer.json()["error"] == "bad_email", trick
    # A stranger who spent this mailbox's requests cannot keep its owner from the desk:
    # staff enter the owner's call.
    by_staff = svc.http.post("/v1/requests", headers=STAFF_AUTH,
                             json={"kind": "suspension", "email": PERSON, "channel": "phone"})
    assert by_staff.status_code == 201, by_staff.text
    assert svc.desk.get(by_staff.json()["ref"]).timeline[0].actor != "person"


def test_a_gmail_mailbox_is_one_budget_however_it_is_dotted(desk_live: Any) -> None:
    for spelling in ("ha.nako@gmail.com", "h.anako@gmail.com", "hanako@googlemail.com"):
        submit(desk_live, kind="suspension", email=spelling)
    answer = desk_live.http.post("/v1/requests", headers=WEB,
                                 json={"kind": "suspension", "email": "h.a.n.a.k.o@gmail.com"})
    assert answer.status_code == 429 and answer.json()["error"] == "too_many_requests"


@pytest.mark.parametrize(("body", "error"), [
    ({"kind": "everything", "email": PERSON}, "bad_kind"),
    ({"kind": "disclosure", "email": "not-an-address"}, "bad_email"),
    ({"kind": "disclosure", "email": PERSON, "lang": "fr"}, "bad_lang"),
    ({"kind": "disclosure", "email": PERSON, "visitor_ids": "abc"}, "bad_visitor_ids"),
    ({"kind": "disclosure", "email": PERSON, "text": "x" * 2001}, "text_too_long"),
])
def test_a_bad_request_is_refused_with_its_reason(desk_live: Any, body: dict[str, Any],
                                                  error: str) -> None:
    answer = desk_live.http.post("/v1/requests", json=body, headers=WEB)
    assert answer.status_code == 400 and answer.json()["error"] == error


def test_the_queue_and_a_request_need_a_privacy_token(desk_live: Any) -> None:
    svc = desk_live
    ref = submit(svc, kind="suspension")
    assert svc.http.get("/v1/requests").status_code == 401
    assert svc.http.get(f"/v1/requests/{ref}",
                        headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert svc.http.get("/v1/requests/R-0000-0000", headers=STAFF_AUTH).status_code == 404


@pytest.mark.parametrize("action", ["start", "complete", "fee", "note", "link", "refuse",
                                    "withdraw"])
def test_no_path_of_the_api_runs_an_operation_on_an_unverified_request(
        desk_live: Any, action: str) -> None:
    svc = desk_live
    visitor = vid()
    insert_events(svc.store, 2, visitor_id=visitor)
    ref = submit(svc, kind="deletion", visitor_ids=[visitor])
    body = {"note": "n", "ground": "identity", "state": "paid", "visitor_id": visitor,
            "wait": True}
    act(svc, ref, action, **body)  # whatever it answers, it must not act on the data
    svc.desk.wait_idle()
    assert svc.store.scalar("SELECT count() FROM events") == 2
    ops = {r[0] for r in svc.store.rows("SELECT operation FROM privacy_requests")}
    assert not ops & {"purge", "export", "suppress"}
    assert not svc.gate.hashes  # nobody suppressed


def test_nothing_changes_a_request_while_it_is_being_completed(desk_live: Any,
                                                               mailbox: Mailbox) -> None:
    svc = desk_live
    visitor = vid()
    insert_events(svc.store, 2, visitor_id=visitor)
    ref = submit(svc, kind="deletion", visitor_ids=[visitor])
    act(svc, ref, "verify", note="窓口で確認")
    svc.desk._completing.add(ref)  # as while its purge runs in the background
    try:
        for action, body in (("refuse", {"ground": "identity"}), ("withdraw", {}),
                             ("complete", {})):
            answer = act(svc, ref, action, **body)
            assert answer.status_code == 409 and answer.json()["error"] == "busy", action
        linked = svc.http.post(f"/v1/requests/{ref}/link", headers=STAFF_AUTH,
                               json={"visitor_id": vid(), "note": "n"})
        assert linked.status_code == 409
    finally:
        svc.desk._completing.discard(ref)
    assert svc.desk.get(ref).status == "verified"


def test_a_purge_that_cannot_verify_never_reports_a_deletion(desk_live: Any,
                                                             mailbox: Mailbox) -> None:
    """A staff note on the dashboards' time axis quotes the visitor id: the purge's file scan
    finds it, so the receipt says something remains, and the request stays open."""
    from collector.notes import Notes

    svc = desk_live
    visitor = vid()
    insert_events(svc.store, 2, visitor_id=visitor)
    Notes(svc.store).add_from({"day": "2026-12-01", "text": f"odd traffic from {visitor}"},
                              "ito")
    ref = submit(svc, kind="deletion", visitor_ids=[visitor], lang="en")
    act(svc, ref, "verify", note="seen at the counter")
    done = act(svc, ref, "complete", wait=True).json()
    assert done["status"] == "in_progress" and done["results"] == []
    assert done["timeline"][-1]["action"] == "failed"
    assert "could not verify" in done["timeline"][-1]["data"]["note"]
    assert not [m for m in mailbox.received() if "completed" in m.subject]


def test_a_collector_without_a_hash_key_takes_no_requests(
        collector_settings: Callable[..., Any]) -> None:
    from starlette.testclient import TestClient

    from collector.service import CollectorService
    from consent_mw.config import Secret

    svc = CollectorService(collector_settings(hash_key=Secret("")))
    svc.start()
    try:
        answer = TestClient(svc.app).post("/v1/requests", headers=WEB,
                                          json={"kind": "suspension", "email": PERSON})
        assert answer.status_code == 503 and answer.json()["error"] == "not_configured"
    finally:
        svc.stop()
