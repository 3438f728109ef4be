"""The evidence pack: complete, reproducible, free of the data it proves the handling of, and
reachable from the API, the command line and the console."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from support.privacy import STAFF_TOKEN, insert_events, insert_record, vid

from collector.privacy import evidence
from consent_mw.config import Secret
from consent_mw.consent.notices import notice_pages
from consent_mw.settings import Settings

AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}
PERSON = "hanako@example.jp"


def files_of(pack: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(pack)) as z:
        return {name: z.read(name) for name in z.namelist()}


def stocked(service: Any) -> tuple[str, str, str]:
    """A store with a record yesterday and today, and a completed request: (visitor, consent
    id, reference)."""
    visitor, consent = vid(), "c-" + vid()
    insert_events(service.store, 3, visitor_id=visitor)
    insert_record(service.store, visitor_id=visitor, consent_id=consent)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    service.store.insert("consent_records", [[
        "9f1b2c3d-0000-4000-8000-000000000001", "c-yesterday", "v-yesterday", yesterday,
        "decided", "reject_all", "banner", "2024-04-23+abcdef012345", "a" * 64]],
        ["record_id", "consent_id", "visitor_id", "ts", "event", "method", "component",
         "policy_version", "policy_hash"])
    desk = service.desk
    ref = desk.submit(kind="suspension", email=PERSON, visitor_ids=(visitor,),
                      text="止めてください").ref
    desk.act(ref, "verify", "sato", note="窓口で確認")
    desk.act(ref, "complete", "sato", wait=True)
    assert desk.get(ref).status == "completed"
    return visitor, consent, ref


def test_the_pack_is_complete_and_holds_no_one_s_data(service: Any, client: Any) -> None:
    visitor, consent, ref = stocked(service)
    today = datetime.now(UTC).date().isoformat()
    answer = client.get("/v1/privacy/evidence", params={"from": today, "to": today},
                        headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    files = files_of(answer.content)
    expected = {k for k in evidence.FILES if not k.endswith("/")} | {"index.html"}
    assert expected <= set(files)
    blob = b"".join(files.values())
    for secret in (PERSON, visitor, "止めてください"):
        assert secret.encode() not in blob, secret
    records = files["consent_records.csv"].decode()
    assert consent in records and "c-yesterday" not in records  # only the period's
    requests = files["privacy_requests.csv"].decode()
    assert ref in requests and "completed" in requests
    timeline = files["request_timelines.csv"].decode()
    assert "sato" in timeline and "verified" in timeline
    verification = json.loads(files["audit_verification.json"])
    assert verification["ok"] is True and verification["rows"] >= 4
    retention = json.loads(files["retention.json"])
    assert retention["configured_seconds"]["events"] == service.settings.events_ttl
    assert any(f"toIntervalSecond({service.settings.events_ttl})" in t
               for t in retention["table_ttls"]["events"])
    index = files["index.html"].decode()
    for name, data in files.items():
        if name != "index.html":
            assert name in index and hashlib.sha256(data).hexdigest() in index
    assert "証跡パッケージ" in index and "Evidence pack" in index
    made = service.store.rows("SELECT requested_by, reason FROM privacy_requests "
                              "WHERE operation = 'evidence'")
    assert made == [("sato", f"evidence pack {today}..{today}")]


def test_the_same_ended_period_gives_the_same_bytes(service: Any, client: Any) -> None:
    stocked(service)
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    first = client.get("/v1/privacy/evidence", params={"from": day, "to": day}, headers=AUTH)
    second = client.get("/v1/privacy/evidence", params={"from": day, "to": day}, headers=AUTH)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content  # the second pack's own audit row is today's
    assert "c-yesterday" in files_of(first.content)["consent_records.csv"].decode()
    # Today's pack is stable too, as long as nothing happens between two builds.
    today = datetime.now(UTC).date().isoformat()
    assert (evidence.build(service.store, service.settings, today, today)
            == evidence.build(service.store, service.settings, today, today))


def test_the_notices_of_the_served_policy_version_are_in_the_pack(service: Any) -> None:
    web = Settings(secret_keys=(Secret("k" * 40),))
    today = datetime.now(UTC).date().isoformat()
    files = files_of(evidence.build(service.store, service.settings, today, today,
                                    notices=lambda: notice_pages(web)))
    base = f"notices/{web.policy_version}/"
    for lang in ("ja", "en"):
        for page in ("banner", "preferences", "external-transmission"):
            assert (base + f"{lang}/{page}.html") in files
    assert files[base + "policy_hash.txt"].decode().strip() == web.policy_hash
    assert "すべて拒否する" in files[base + "ja/banner.html"].decode()


def test_bad_periods_and_missing_tokens_are_refused(client: Any) -> None:
    for params in ({"from": "2026-13-01", "to": "2026-12-01"},
                   {"from": "2026-12-02", "to": "2026-12-01"},
                   {"from": "2020-01-01", "to": "2026-12-01"}, {}):
        answer = client.get("/v1/privacy/evidence", params=params, headers=AUTH)
        assert answer.status_code == 400, params
    assert client.get("/v1/privacy/evidence",
                      params={"from": "2026-12-01", "to": "2026-12-01"}).status_code == 401


def test_the_command_writes_the_pack(live: Any, tmp_path: Any) -> None:
    from collector.privacy.cli_evidence import evidence as command

    out = tmp_path / "pack.zip"
    today = datetime.now(UTC).date().isoformat()
    result = CliRunner().invoke(command, ["--from", today, "--to", today, "--out", str(out),
                                          "--url", live.url, "--token", STAFF_TOKEN])
    assert result.exit_code == 0, result.output
    digest = re.search(r"sha256 ([0-9a-f]{64})", result.output)
    assert digest and hashlib.sha256(out.read_bytes()).hexdigest() == digest.group(1)
    assert "index.html" in files_of(out.read_bytes())
    bad = CliRunner().invoke(command, ["--from", "x", "--to", today, "--out", str(out),
                                       "--url", live.url, "--token", STAFF_TOKEN])
    assert bad.exit_code == 1 and "dates" in bad.output and "Traceback" not in bad.output


def test_records_are_read_a_page_at_a_time_and_none_is_lost(
        service: Any, monkeypatch: Any) -> None:
    """Paging by (ts, record_id): records sharing a moment across a page boundary are all
    written, once, in order."""
    monkeypatch.setattr(evidence, "PAGE_ROWS", 7)
    moment = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    rows = [[f"00000000-0000-4000-8000-{n:012d}", f"c{n}", f"v{n}",
             moment + timedelta(seconds=n // 4), "decided", "accept_all", "banner",
             "2024-04-23+abcdef012345", "a" * 64] for n in range(30)]
    service.store.insert("consent_records", rows, [
        "record_id", "consent_id", "visitor_id", "ts", "event", "method", "component",
        "policy_version", "policy_hash"])
    today = moment.date().isoformat()
    written = files_of(evidence.build(service.store, service.settings, today, today))
    lines = written["consent_records.csv"].decode().splitlines()[1:]
    assert [line.split(",")[1] for line in lines] == [f"c{n}" for n in range(30)]
