"""The evidence pack: one zip that shows a regulator how consent and privacy requests were
handled over a period.

::

    index.html                     what each file is, in Japanese and English, with its SHA-256
    policy_versions.csv            each policy version seen: its hash, first and last moment
    notices/<version>/<lang>/...   the banner, preferences page and external-transmission
                                   notice of the policy version this process serves
    consent_records.csv            every consent record of the period (no visitor id)
    consent_by_day.csv             the same, counted by day, event and decision
    privacy_requests.csv           each request of the period: kind, status, dates, fee
    request_timelines.csv          their timelines (who did what, when; no e-mail, no ids)
    purge_receipts.csv             the purge receipts of the period (hashes only)
    audit_chain.csv                the hash-chained audit trail up to the period's end
    audit_verification.json        that prefix of the chain, recomputed
    retention.json                 the configured retention and the tables' TTLs

Reproducible: the same period over the same store gives the same bytes. Rows are ordered,
the zip's timestamps are fixed, nothing states when the pack was made, and the audit chain
stops at the period's end. (A period that has not ended yet can still change: staff act and
records arrive.) Days are UTC; the period includes both dates. Making a pack is itself
audited, after the chain it holds is read.

What it leaves out: a person's e-mail, free text, visitor ids and account ids. The pack proves
handling; it does not copy the data handled.

A little over 300 lines: the index's two-language description of each file sits beside the
code that writes it. The HTTP route is ``collector.privacy.evidence_api``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any, BinaryIO

from collector.csvsafe import csv_cell, write_csv
from collector.privacy import audit
from collector.privacy.subjects import PrivacyError, plain, plain_rows
from collector.requests.log import RequestLog
from collector.settings import CollectorSettings
from collector.store import Store

#: ``(policy_version, policy_hash, {path: html})``: the notices a web process shows now.
Notices = Callable[[], "tuple[str, str, dict[str, str]]"]
MAX_DAYS = 3 * 366
_FIXED = (1980, 1, 1, 0, 0, 0)
FILES: dict[str, tuple[str, str]] = {
    "policy_versions.csv": ("同意の説明(ポリシー)の各版: ハッシュと、記録に現れた最初と最後の日時",
                            "Each policy version seen: its hash, first and last moment"),
    "notices/": ("その版でサイトが表示するバナー、設定ページ、外部送信の公表事項(言語ごと)",
                 "The banner, preferences page and external-transmission notice this site "
                 "shows for that version, per language"),
    "consent_records.csv": ("期間中の同意の記録すべて(訪問者 ID は含みません)",
                            "Every consent record of the period (no visitor id)"),
    "consent_by_day.csv": ("同意の記録の日ごと・種類ごと・選択ごとの件数",
                           "Consent records counted by day, event and decision"),
    "privacy_requests.csv": ("期間中に受け付けたご請求: 種類、状況、日付、手数料",
                             "Requests received in the period: kind, status, dates, fee"),
    "request_timelines.csv": ("ご請求の経過(誰が、いつ、何をしたか。"
                              "メールアドレスや識別子は含みません)",
                              "Their timelines: who did what, when (no e-mail, no ids)"),
    "purge_receipts.csv": ("期間中の削除の受領証(ハッシュのみ)",
                           "Purge receipts of the period (hashes only)"),
    "audit_chain.csv": ("期間の終わりまでの監査ログ(ハッシュで連鎖)",
                        "The hash-chained audit trail up to the period's end"),
    "audit_verification.json": ("その監査ログの連鎖を再計算した結果",
                                "That chain, recomputed"),
    "retention.json": ("設定された保存期間と、各テーブルの TTL",
                       "The configured retention and the tables' TTLs"),
}


def period(start: str, end: str) -> tuple[datetime, datetime]:
    """``[start 00:00, end+1 00:00)`` UTC from two ISO dates, or PrivacyError."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise PrivacyError("from and to must be dates (YYYY-MM-DD)") from None
    if last < first:
        raise PrivacyError("to must not be before from")
    if (last - first).days > MAX_DAYS:
        raise PrivacyError(f"a pack covers at most {MAX_DAYS} days")
    begin = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return begin, datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)


class _Pack:
    """The zip being written: fixed timestamps, each file's SHA-256 kept for the index."""

    def __init__(self, out: BinaryIO) -> None:
        self.zip = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
        self.hashes: dict[str, str] = {}

    def _info(self, path: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=_FIXED)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def add(self, path: str, data: bytes) -> None:
        self.zip.writestr(self._info(path), data)
        self.hashes[path] = hashlib.sha256(data).hexdigest()

    def rows(self, path: str, columns: Sequence[str],
             pages: Iterable[Iterable[Sequence[Any]]]) -> None:
        """A CSV written page by page (memory bounded by one page), through the one cell
        neutraliser (``collector.csvsafe``)."""
        digest = hashlib.sha256()
        with self.zip.open(self._info(path), "w") as raw:
            def write(line: str) -> None:
                data = line.encode("utf-8")
                digest.update(data)
                raw.write(data)

            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow(columns)
            for page in pages:
                writer.writerows([csv_cell(v) for v in row] for row in page)
                write(text.getvalue())
                text.seek(0)
                text.truncate()
            write(text.getvalue())
        self.hashes[path] = digest.hexdigest()

    def close(self) -> None:
        self.zip.close()


def build(store: Store, settings: CollectorSettings, start: str, end: str, *,
          notices: Notices | None = None, requested_by: str = "") -> bytes:
    """The pack for ``start``..``end`` (ISO dates, both included), in memory; see
    :func:`write`."""
    buf = io.BytesIO()
    write(store, settings, start, end, buf, notices=notices, requested_by=requested_by)
    return buf.getvalue()


def write(store: Store, settings: CollectorSettings, start: str, end: str, out: BinaryIO, *,
          notices: Notices | None = None, requested_by: str = "") -> str:
    """Write the pack for ``start``..``end`` (ISO dates, both included) to ``out`` (a file
    open for writing and reading) and return its SHA-256. Consent records are read a page at
    a time, so a large period costs disk, not memory. Making a pack is audited, after the
    chain it holds is read."""
    begin, stop = period(start, end)
    pack = _Pack(out)
    p = {"a": begin, "b": stop}
    pack.add("policy_versions.csv", _csv(store.dicts(
        "SELECT policy_version, any(policy_hash) AS policy_hash, min(ts) AS first_seen, "
        "max(ts) AS last_seen, count() AS records FROM consent_records WHERE ts < "
        "{b:DateTime64(3, 'UTC')} GROUP BY policy_version ORDER BY first_seen, "
        "policy_version", p)))
    if notices is not None:
        version, digest, pages = notices()
        for path, html in sorted(pages.items()):
            pack.add(f"notices/{version}/{path}", html.encode("utf-8"))
        pack.add(f"notices/{version}/policy_hash.txt", (digest + "\n").encode())
    pack.rows("consent_records.csv", RECORD_COLUMNS, _record_pages(store, begin, stop))
    pack.add("consent_by_day.csv", _csv(store.dicts(
        "SELECT toDate(ts, 'UTC') AS day, event, method, count() AS records FROM "
        "consent_records WHERE ts >= {a:DateTime64(3, 'UTC')} AND ts < "
        "{b:DateTime64(3, 'UTC')} GROUP BY day, event, method ORDER BY day, event, method",
        p)))
    requests, timelines = _requests(store, settings, begin, stop)
    pack.add("privacy_requests.csv", _csv(requests))
    pack.add("request_timelines.csv", _csv(timelines))
    pack.add("purge_receipts.csv", _csv(store.dicts(
        "SELECT toString(receipt_id) AS receipt_id, requested_at, verified_at, requested_by, "
        "reason, id_type, arrayStringConcat(subject_hashes, ' ') AS subject_hashes, "
        "toJSONString(rows_deleted) AS rows_deleted, remaining, files_checked FROM "
        "purge_receipts WHERE requested_at >= {a:DateTime64(3, 'UTC')} AND requested_at < "
        "{b:DateTime64(3, 'UTC')} ORDER BY requested_at, receipt_id", p)))
    chain = audit.chain_until(store, stop)
    pack.add("audit_chain.csv", _csv(chain))
    pack.add("audit_verification.json", _json(_verify(chain)))
    pack.add("retention.json", _json(_retention(store, settings)))
    pack.add("index.html", _index(start, end, pack.hashes).encode("utf-8"))
    pack.close()
    out.seek(0)
    whole = hashlib.sha256()
    for chunk in iter(lambda: out.read(1 << 20), b""):
        whole.update(chunk)
    sha = whole.hexdigest()
    if requested_by:
        audit.append(store, operation="evidence", id_type="period", subject_hash="",
                     requested_by=requested_by, reason=f"evidence pack {start}..{end}",
                     outcome="done", details={"from": start, "to": end, "sha256": sha})
    return sha


RECORD_COLUMNS = ("record_id", "consent_id", "ts", "event", "method", "component",
                  "policy_version", "policy_hash", "locale", "categories", "services", "gpc",
                  "anonymised")
PAGE_ROWS = 50_000


def _record_pages(store: Store, begin: datetime, stop: datetime
                  ) -> Iterator[list[tuple[Any, ...]]]:
    """The period's consent records in (ts, record_id) order, :data:`PAGE_ROWS` at a time
    (keyset paging: each page starts after the last row of the one before). Every column
    comes as text from the store, so writing a row is only the neutralising of its cells;
    the last one is the raw moment the next page starts after."""
    after_ts, after_id = begin - timedelta(milliseconds=1), ""
    while True:
        page = store.rows(
            "SELECT toString(record_id) AS rid, consent_id, "
            "concat(replaceOne(toString(ts, 'UTC'), ' ', 'T'), 'Z'), event, method, "
            "component, policy_version, policy_hash, locale, toJSONString(categories), "
            "toJSONString(services), toString(gpc), toString(anonymised), ts "
            "FROM consent_records WHERE "
            "ts >= {a:DateTime64(3, 'UTC')} AND ts < {b:DateTime64(3, 'UTC')} AND "
            "(ts, rid) > ({t:DateTime64(3, 'UTC')}, {r:String}) ORDER BY ts, rid "
            "LIMIT {n:UInt32}", {"a": begin, "b": stop, "t": after_ts, "r": after_id,
                                 "n": PAGE_ROWS})
        if not page:
            return
        yield [row[:-1] for row in page]
        after_ts, after_id = page[-1][-1], str(page[-1][0])
        if len(page) < PAGE_ROWS:
            return


def _requests(store: Store, settings: CollectorSettings, begin: datetime, stop: datetime
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    log = RequestLog(lambda: store, due_days=settings.request_due_days,
                     key=settings.hash_key_bytes)
    lo, hi = int(begin.timestamp() * 1000), int(stop.timestamp() * 1000)
    rows, lines = [], []
    for ref in log.refs_received(lo, hi):
        r = log.before(ref, hi)  # as it stood at the period's end, whatever came after
        if r is None:
            continue
        rows.append({"ref": r.ref, "kind": r.kind, "channel": r.channel, "status": r.status,
                     "received_at": _iso(r.received_at), "verified_at": _iso(r.verified_at),
                     "verified_by": r.verified_by, "due_at": _iso(r.due_at),
                     "closed_at": _iso(r.closed_at), "fee": r.fee, "fee_yen": r.fee_yen,
                     "ground": r.ground, "results": json.dumps(r.results, sort_keys=True)})
        for e in r.timeline:
            kept = {k: v for k, v in e.data.items()
                    if k in ("by", "ground", "state", "operation", "template", "kind")}
            lines.append({"ref": r.ref, "seq": e.seq, "at": _iso(e.at), "actor": e.actor,
                          "action": e.action, "detail": json.dumps(kept, sort_keys=True)})
    return rows, lines


def _verify(chain: list[dict[str, Any]]) -> dict[str, Any]:
    """Recompute the chain's links and hashes (the rows given, from the first)."""
    prev, problems = audit.GENESIS, []
    for n, row in enumerate(chain, 1):
        if row["seq"] != n or row["prev_hash"] != prev:
            problems.append({"seq": row["seq"], "problem": "broken_link"})
        if audit.row_hash(row["prev_hash"], row) != row["row_hash"]:
            problems.append({"seq": row["seq"], "problem": "row_edited"})
        prev = row["row_hash"]
    return {"ok": not problems, "rows": len(chain), "last_hash": prev, "problems": problems[:20]}


def _retention(store: Store, settings: CollectorSettings) -> dict[str, Any]:
    ttls = {str(name): _ttl(str(ddl)) for name, ddl in store.rows(
        "SELECT name, create_table_query FROM system.tables WHERE database = "
        "currentDatabase() AND name IN ('events', 'consent_records', 'rights_requests', "
        "'rights_mail') ORDER BY name")}
    return {"configured_seconds": {"events": settings.events_ttl, "ip": settings.ip_ttl,
                                   "consent_records": settings.records_ttl,
                                   "privacy_requests": settings.requests_ttl},
            "request_due_days": settings.request_due_days,
            "disclosure_fee_yen": settings.disclosure_fee_yen, "table_ttls": ttls}


def _ttl(ddl: str) -> list[str]:
    return sorted(part.strip().split(" SETTINGS")[0] for part in ddl.split("TTL ")[1:])


def _iso(ms: int | None) -> str:
    if not ms:
        return ""
    return str(plain(datetime.fromtimestamp(ms / 1000, UTC)))


def _csv(rows: list[dict[str, Any]]) -> bytes:
    return write_csv(plain_rows(rows)).encode("utf-8")


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _index(start: str, end: str, hashes: Mapping[str, str]) -> str:
    rows = []
    for path, sha in sorted(hashes.items()):
        key = "notices/" if path.startswith("notices/") else path
        ja, en = FILES.get(key, ("", ""))
        rows.append(f"<tr><td><code>{escape(path)}</code></td><td>{escape(ja)}<br>"
                    f"<span lang=\"en\">{escape(en)}</span></td><td><code>"
                    f"{sha}</code></td></tr>")
    return ("<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name="
            "\"viewport\" content=\"width=device-width, initial-scale=1\"><title>証跡パッケージ"
            f" {escape(start)} – {escape(end)}</title><style>body{{font:15px/1.6 system-ui,"
            "sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}table{border-collapse:"
            "collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:"
            "top;text-align:left}code{overflow-wrap:anywhere}</style></head><body>"
            f"<h1>証跡パッケージ / Evidence pack</h1><p>期間 / Period: {escape(start)} – "
            f"{escape(end)} (UTC)</p><p>同意の取得とご請求への対応を示すファイルです。"
            "メールアドレス、ご請求の本文、訪問者 ID、会員 ID は含みません。同じ期間からは同じ"
            "ファイルが作られます(SHA-256 で確かめられます)。</p><p lang=\"en\">Files that show "
            "how consent was obtained and privacy requests were handled. They hold no e-mail "
            "address, request text, visitor id or member id. The same period gives the same "
            "files (check the SHA-256).</p><table><thead><tr><th>ファイル / File</th><th>内容 / "
            "Content</th><th>SHA-256</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></body></html>\n")
