"""Against a uvicorn-served collector: purge during live traffic, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from support.privacy import ADMIN, COLLECT, vid, why, wire_event
from support.servers import free_port, wait_for

from collector.privacy.disk_scan import scan_directory
from consent_mw_cli.main import main

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


@pytest.mark.slow
def test_purge_during_traffic_from_another_process_leaves_nothing_and_spares_others(
    live: Any, tmp_path: Path
) -> None:
    target = vid()
    stop = tmp_path / "stop"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "traffic.py"), live.url, COLLECT, target, "5", str(stop)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        count = "SELECT count() FROM events WHERE visitor_id = {v:String}"
        wait_for(lambda: live.store.scalar(count, {"v": target}) >= 20)
        resp = httpx.post(live.url + "/v1/privacy/purge", timeout=120,
                          headers={"Authorization": f"Bearer {ADMIN}"},
                          json={"visitor_id": target, "reason": "test", "requested_by": "t"})
        assert resp.status_code == 200, resp.text
        receipt = resp.json()
        # Traffic keeps arriving after the receipt; it must not bring the visitor back.
        baseline = live.store.scalar("SELECT count() FROM events")
        wait_for(lambda: live.store.scalar("SELECT count() FROM events") > baseline + 20)
    finally:
        stop.touch()
        out, _ = proc.communicate(timeout=60)
    sent = json.loads(out)["sent"]

    assert receipt["remaining"] == 0 and receipt["rows_deleted"]["events"] >= 20
    export = httpx.get(live.url + "/v1/privacy/export", params=why(visitor_id=target),
                       headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert export["events"] == []
    assert live.store.path is not None
    assert scan_directory(live.store.path, [target]).matches == []
    stored = dict(live.store.rows("SELECT visitor_id, count() FROM events GROUP BY 1"))
    assert target not in stored
    assert stored == {v: n for v, n in sent.items() if v != target}


def run(*args: str, token: str = ADMIN, **env: str) -> Any:
    return CliRunner().invoke(main, list(args), env={"CONSENT_MW_ADMIN_TOKEN": token,
                                                     "CONSENT_MW_STAFF_TOKEN": "", **env})


WHO = ("--reason", "Art. 6 request #43", "--requested-by", "sato")


def test_cli_suppress_export_purge_and_audit_verify(live: Any) -> None:
    target = vid()
    suppressed = run("suppress", "--visitor-id", target, "--url", live.url, *WHO)
    assert suppressed.exit_code == 0, suppressed.output
    assert json.loads(suppressed.stdout)["active"] is True
    exported = run("export", "--visitor-id", target, "--url", live.url, *WHO)
    assert exported.exit_code == 0
    assert json.loads(exported.stdout)["subject"]["suppressed"] is True
    purged = run("purge", "--visitor-id", target, "--url", live.url, *WHO)
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.stdout)["remaining"] == 0
    verified = run("audit", "verify", "--url", live.url)
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True
    listed = run("requests", "--url", live.url)
    assert [r["operation"] for r in json.loads(listed.stdout)["requests"]][:2] == [
        "purge", "purge"]


def test_cli_fails_clearly_on_refusal_bad_input_and_no_server(live: Any) -> None:
    wrong = run("purge", "--visitor-id", vid(), "--url", live.url, *WHO, token="wrong")
    assert wrong.exit_code == 1 and "HTTP 403" in wrong.output
    bad = run("suppress", "--visitor-id", "no spaces allowed", "--url", live.url, *WHO)
    assert bad.exit_code == 1 and "HTTP 400" in bad.output and "malformed" in bad.output
    both = run("purge", "--visitor-id", vid(), "--user-id", "u", "--url", live.url, *WHO)
    assert both.exit_code == 2
    down = run("export", "--visitor-id", vid(), "--url", f"http://127.0.0.1:{free_port()}",
               *WHO)
    assert down.exit_code == 1 and "cannot reach the collector" in down.output


@pytest.mark.parametrize("args, missing", [
    (("--reason", "", "--requested-by", "sato"), "--reason"),
    (("--reason", "  ", "--requested-by", "sato"), "--reason"),
    (("--reason", "Art. 6", "--requested-by", ""), "--requested-by"),
])
def test_cli_refuses_a_purge_without_a_reason_or_a_requester(
        live: Any, args: tuple[str, ...], missing: str) -> None:
    target = vid()
    result = run("purge", "--visitor-id", target, "--url", live.url, *args)
    assert result.exit_code == 2 and missing in result.output
    assert len(result.output.strip().splitlines()) <= 3
    assert live.privacy.pending_purges() == [] and not live.privacy.is_suppressed(
        "visitor_id", target)


def test_cli_says_in_a_line_when_the_url_is_not_a_collector(live: Any) -> None:
    # The collector's own /healthz is JSON but not the privacy API; a path off the API is a
    # plain 404: both are "not a collector at this URL", in one line.
    wrong = run("export", "--visitor-id", vid(), "--url", live.url + "/nothing-here", *WHO)
    assert wrong.exit_code == 1
    errors = [line for line in wrong.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "did not answer as a consent-mw collector" in errors[0]
    assert "<" not in wrong.output  # no page dumped


def test_http_rights_serve_self_service_from_a_remote_collector(live: Any) -> None:
    from consent_mw.consent.rights import HttpRights, RightsError

    target = vid()
    live.ingest.process([wire_event(visitor_id=target)])
    rights = HttpRights(live.url, ADMIN)
    assert len(rights.export(target)["events"]) == 1
    request_id = rights.request_purge(target)
    # Queued: the visitor is suppressed at once, and the receipt follows the batch.
    assert live.privacy.is_suppressed("visitor_id", target)
    wait_for(lambda: (rights.purge_status(request_id) or {}).get("status") == "completed")
    receipt = (rights.purge_status(request_id) or {})["receipt"]
    assert receipt["remaining"] == 0 and receipt["rows_deleted"]["events"] == 1
    assert rights.purge_status("00000000-0000-4000-8000-000000000000") is None
    with pytest.raises(RightsError):
        HttpRights(live.url, "wrong").export(target)


def test_a_web_process_on_the_same_host_posts_plain_json_and_it_is_stored(live: Any) -> None:
    from consent_mw.capture.transport import HttpTransport, SendResult

    target = vid()
    transport = HttpTransport(live.url, COLLECT)
    try:
        assert not transport.gzip  # live.url is a loopback address
        events = [wire_event(visitor_id=target, path=f"/p{i}") for i in range(3)]
        assert transport.send(events, [], batch_id=vid(), sent_at=events[0]["ts"]) == (
            SendResult(accepted=3))
    finally:
        transport.close()
    assert live.store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                             {"v": target}) == 3


def test_web_process_transport_reads_the_suppression_list(live: Any) -> None:
    from consent_mw.capture.suppression import SuppressionList
    from consent_mw.capture.transport import HttpTransport

    target = vid()
    httpx.post(live.url + "/v1/privacy/suppress", json=why(visitor_id=target),
               headers={"Authorization": f"Bearer {ADMIN}"}).raise_for_status()
    transport = HttpTransport(live.url, COLLECT)
    try:
        answer = transport.fetch_suppressions()
    finally:
        transport.close()
    assert answer is not None
    remote = SuppressionList(live.settings.hash_key_bytes)
    remote.replace(answer.hashes, answer.version, purged=answer.purged)
    assert remote.is_suppressed(visitor_id=target)
    assert not remote.is_suppressed(visitor_id=vid())
