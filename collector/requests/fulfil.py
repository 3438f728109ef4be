"""Completing a request: the kind's operation on every id the request resolves to.

``export`` (Art. 5) packs each id's export into one zip, ``purge`` (Art. 6) queues a purge per
id and waits for the verified receipts, ``suppress`` (Art. 7, or a withdrawal) suppresses each
id. Each operation writes its own audit rows under the staff member's name, with the request's
reference as the reason. The results kept on the request hold hashes, counts and receipt ids,
never the ids themselves.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

from collector.privacy.export_format import export_zip
from collector.privacy.operations import Privacy
from collector.requests.model import Request


def fulfil(privacy: Privacy, request: Request, staff: str
           ) -> tuple[list[dict[str, Any]], bytes | None]:
    """The results to record, and the zip to mail for a disclosure."""
    p = privacy
    reason = f"privacy request {request.ref}"
    ids = [{id_type: value} for id_type, value in request.subjects]
    if request.operation == "export":
        exports = [p.export_logged(**i, requested_by=staff, reason=reason) for i in ids]
        pack = pack_exports(exports)
        return [{"operation": "export", "id_type": e["subject"]["id_type"],
                 "subject_hash": e["subject"]["subject_hash"],
                 **{k: len(e[k]) for k in ("events", "consent_records")},
                 "zip_sha256": hashlib.sha256(pack).hexdigest()} for e in exports], pack
    if request.operation == "suppress":
        done = [p.suppress(**i, reason=reason, requested_by=staff) for i in ids]
        return [{"operation": "suppress", "id_type": d["id_type"],
                 "subject_hash": d["subject_hash"], "audit_id": d["request_id"]}
                for d in done], None
    jobs = [p.request_purge(**i, reason=reason, requested_by=staff) for i in ids]
    if not p.purges.running:
        p.purges.run_waiting()
    out = []
    for job in jobs:
        p.purges.wait(job)
        receipt = job.receipt
        if receipt is None:
            raise RuntimeError(job.error or "the purge did not finish")
        if receipt.get("remaining") != 0:
            # Never tell a person "none is left" on a receipt that says otherwise; the purge
            # resumes, and staff complete the request again once it verifies.
            raise RuntimeError(f"the purge could not verify: {receipt.get('remaining')} "
                               f"rows or file matches remain (receipt "
                               f"{receipt.get('receipt_id')})")
        out.append({"operation": "purge", "receipt_id": str(receipt.get("receipt_id")),
                    "rows_deleted": receipt.get("rows_deleted"),
                    "remaining": receipt.get("remaining"),
                    "verified_at": str(receipt.get("verified_at", ""))})
    return out, None


def export_again(privacy: Privacy, request: Request) -> bytes:
    """The disclosure's zip made again from the store, for a mail sent again or after a
    restart (the one completing made is used once); audited like the first."""
    reason = f"privacy request {request.ref}: the export mailed again"
    return pack_exports([privacy.export_logged(**{t: v}, requested_by="system", reason=reason)
                         for t, v in request.subjects])


def pack_exports(exports: list[dict[str, Any]]) -> bytes:
    """One zip for a request: each id's export in its own folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for n, data in enumerate(exports, 1):
            with zipfile.ZipFile(io.BytesIO(export_zip(data))) as inner:
                for name in inner.namelist():
                    out.writestr(f"{n:02d}-{data['subject']['id_type']}/{name}",
                                 inner.read(name))
    return buf.getvalue()
