"""A privacy request as the timeline of what happened to it, and the state that timeline folds
into. Pure: no store, no clock but the one passed in.

Nothing is ever updated in place. A request is its entries (``submitted``, ``code_sent``,
``verified``, ``completed``, ...), each with its moment and who made it; :func:`fold` reads
them in order into a :class:`Request`. So the timeline a console shows and the state the
workflow checks are the same rows, and a request's history cannot be rewritten.

The workflow::

    received ──verify──▶ verified ──start──▶ in_progress ──complete──▶ completed
        │                   │                    │
        └───────────────────┴────────────────────┴──refuse──▶ refused (with grounds)
                                                  └─withdraw─▶ withdrawn

Verification is the one gate: :func:`check` refuses ``start`` and ``complete`` for any
request that is not verified, however it is asked (a retry, a duplicate request, any API).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.errors import CollectorError
from consent_mw.ids import is_valid_id

DAY_MS = 86_400_000

#: Kind → the operation completing it runs on every id the verified identity resolves to.
KINDS: dict[str, str] = {
    "disclosure": "export",  # Art. 5
    "deletion": "purge",  # Art. 6: correction or deletion (analytics rows are deleted)
    "suspension": "suppress",  # Art. 7: suspension of use
    "withdrawal": "suppress",  # consent withdrawn: nothing more is captured or shown
}
STATUSES = ("received", "verified", "in_progress", "completed", "refused", "withdrawn")
OPEN = frozenset({"received", "verified", "in_progress"})
#: Action → (statuses it may start from, the status it leads to).
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "verify": (frozenset({"received"}), "verified"),
    "start": (frozenset({"verified"}), "in_progress"),
    "complete": (frozenset({"verified", "in_progress"}), "completed"),
    "refuse": (OPEN, "refused"),
    "withdraw": (OPEN, "withdrawn"),
}
#: Art. 5's grounds for not disclosing, and the one every request can be refused on.
GROUNDS = ("harm", "business", "law", "identity")
FEE_STATES = ("due", "paid", "waived", "none")
CHANNELS = ("web", "phone", "letter", "counter", "email")
MAX_TEXT = 2000
MAX_VISITOR_IDS = 20
#: Plain ASCII addresses only: no comments ``(x)``, groups ``x:``, quoting or routing, which
#: a mail server would deliver to one mailbox under endlessly many spellings.
EMAIL = re.compile(r"^[A-Za-z0-9._+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*"
                   r"\.[A-Za-z]{2,63}$")
REF = re.compile(r"^R-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


class RequestRefused(CollectorError, ValueError):
    """The request or action is not allowed: ``code`` for machines, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownRequest(RequestRefused):
    def __init__(self) -> None:
        super().__init__("unknown_request", "no request has this reference number")


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a request's timeline."""

    ref: str
    seq: int
    at: int  # ms since the epoch, UTC
    actor: str  # "person", "system" or a staff account name
    action: str
    data: Mapping[str, Any]
    email_key: str = ""  # the keyed hash of the person's mailbox (collector.requests.log)


@dataclass(slots=True)
class Request:
    """What a timeline says now (see :func:`fold`)."""

    ref: str
    kind: str
    email: str
    email_key: str
    lang: str
    channel: str
    text: str
    account_id: str
    #: True: the site's account has this e-mail; False: it has another; None: not asked.
    account_match: bool | None
    visitor_ids: list[str]
    received_at: int
    status: str = "received"
    verified_at: int | None = None
    verified_by: str = ""
    due_at: int | None = None
    closed_at: int | None = None
    fee: str = "none"
    fee_yen: int = 0
    ground: str = ""
    code_hash: str = ""
    code_expires: int = 0
    code_tries: int = 0
    codes_sent: list[int] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[Entry] = field(default_factory=list)

    @property
    def operation(self) -> str:
        return KINDS[self.kind]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def overdue(self, now: int) -> bool:
        return self.is_open and self.due_at is not None and now > self.due_at

    @property
    def user_ids(self) -> list[str]:
        """The account this request may act on: only one whose e-mail matched, or one staff
        linked after checking."""
        linked = [str(e.data.get("user_id")) for e in self.timeline
                  if e.action == "linked" and e.data.get("user_id")]
        mine = [self.account_id] if self.account_id and self.account_match else []
        return sorted({*mine, *linked})

    @property
    def subjects(self) -> list[tuple[str, str]]:
        """(id_type, id) pairs completing runs on: attached browsers, linked ids, account."""
        visitors = {*self.visitor_ids, *(str(e.data["visitor_id"]) for e in self.timeline
                                         if e.action == "linked" and e.data.get("visitor_id"))}
        return ([("visitor_id", v) for v in sorted(visitors)]
                + [("user_id", u) for u in self.user_ids])


def fold(entries: Iterable[Entry], *, due_days: int) -> Request:
    """The state of one request from its timeline, oldest entry first."""
    request: Request | None = None
    for entry in sorted(entries, key=lambda e: e.seq):
        d = entry.data
        if request is None:
            if entry.action != "submitted":
                raise ValueError(f"{entry.ref}: timeline does not start with its submission")
            match = d.get("account_match")
            request = Request(
                ref=entry.ref, kind=str(d["kind"]), email=str(d.get("email", "")),
                email_key=entry.email_key,
                lang=str(d.get("lang", "ja")), channel=str(d.get("channel", "web")),
                text=str(d.get("text", "")), account_id=str(d.get("account_id", "")),
                account_match=match if isinstance(match, bool) else None,
                visitor_ids=[str(v) for v in d.get("visitor_ids", [])],
                received_at=entry.at, fee=str(d.get("fee", "none")),
                fee_yen=int(d.get("fee_yen", 0)))
        r = request
        r.timeline.append(entry)
        action = entry.action
        if action == "code_sent":
            r.code_hash, r.code_expires, r.code_tries = str(d["hash"]), int(d["expires"]), 0
            r.codes_sent.append(entry.at)
        elif action == "code_failed":
            r.code_tries += 1
        elif action == "code_used":
            r.code_hash = ""  # single use
        elif action == "fee":
            r.fee = str(d.get("state", r.fee))
        elif action == "completed":
            r.results = list(d.get("results", []))
        elif action == "account":
            match = d.get("account_match")
            r.account_match = match if isinstance(match, bool) else None
        status = _STATUS_OF.get(action)
        if status is not None:
            r.status = status
        if status == "verified":
            r.verified_at, r.verified_by = entry.at, str(d.get("by", ""))
            r.due_at = entry.at + due_days * DAY_MS
        if status in ("completed", "refused", "withdrawn"):
            r.closed_at = entry.at
            r.ground = str(d.get("ground", ""))
    if request is None:
        raise UnknownRequest()
    return request


#: Timeline action → the status it records.
_STATUS_OF = {"verified": "verified", "started": "in_progress", "completing": "in_progress",
              "completed": "completed",
              "refused": "refused", "withdrawn": "withdrawn"}
#: Workflow verb → the timeline action that records it.
RECORDED_AS = {"verify": "verified", "start": "started", "complete": "completed",
               "refuse": "refused", "withdraw": "withdrawn"}


def check(request: Request, action: str) -> str:
    """The status ``action`` leads to, or RequestRefused saying why it may not happen now."""
    if action not in TRANSITIONS:
        raise RequestRefused("bad_action", f"unknown action {action!r}")
    sources, target = TRANSITIONS[action]
    if request.status not in sources:
        if action in ("start", "complete") and request.status == "received":
            raise RequestRefused("unverified", "the request is not verified: nothing can be "
                                 "done on it until the person's identity is confirmed")
        raise RequestRefused("bad_state", f"a {request.status} request cannot be "
                             f"{RECORDED_AS[action]}")
    if action in ("start", "complete") and request.verified_at is None:
        raise RequestRefused("unverified", "the request is not verified")
    if action == "complete":
        if request.kind == "disclosure" and request.fee == "due":
            raise RequestRefused("fee_due", "the disclosure fee is due: record it as paid or "
                                 "waived first")
        if not request.subjects:
            raise RequestRefused("no_ids", "no id is linked to this request: attach the "
                                 "visitor ids or account found with the lookup first")
    return target


def email_ok(value: str) -> bool:
    return bool(EMAIL.fullmatch(value)) and len(value) <= 254


#: Providers known to deliver every dotted spelling of a local part to one mailbox.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def canonical_email(value: str) -> str:
    """One mailbox, one spelling, for the limits only: lower case, without a ``+tag``, and
    without dots where the provider ignores them, so ``a+1@x.jp`` and ``A@x.jp``, or
    ``h.anako@gmail.com`` and ``hanako@googlemail.com``, spend the same person's budget."""
    local, _, domain = value.strip().lower().partition("@")
    local = local.split("+", 1)[0]
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def same_email(a: str, b: str) -> bool:
    """Whether two (ASCII) addresses are the same, in any case: what lets a request act on
    an account. Not :func:`canonical_email`: a ``+tag`` may be delivered to someone else
    (a catch-all, or a server that routes tags), and the code goes to the address given."""
    return a.strip().lower() == b.strip().lower()


def submission(*, kind: str, email: str, lang: str, channel: str, text: str,
               account_id: str, account_email: str | None, visitor_ids: Iterable[str],
               fee_yen: int) -> dict[str, Any]:
    """A ``submitted`` entry's data from a form's fields, or RequestRefused naming the field."""
    if kind not in KINDS:
        raise RequestRefused("bad_kind", f"kind must be one of {', '.join(KINDS)}")
    email = email.strip()
    if not email_ok(email):
        raise RequestRefused("bad_email", "a valid e-mail address is required")
    if lang not in ("ja", "en"):
        raise RequestRefused("bad_lang", "lang must be ja or en")
    if channel not in CHANNELS:
        raise RequestRefused("bad_channel", f"channel must be one of {', '.join(CHANNELS)}")
    if len(text) > MAX_TEXT:
        raise RequestRefused("text_too_long", f"the text is over {MAX_TEXT} characters")
    account_id = account_id.strip()
    if account_id and not is_valid_id(account_id):
        raise RequestRefused("bad_account_id", "the account id has characters it cannot have "
                             "(1-64 of 0-9, A-Z, a-z, _ and -)")
    ids = sorted({str(v) for v in visitor_ids if v})
    if len(ids) > MAX_VISITOR_IDS:
        raise RequestRefused("too_many_ids", "too many visitor ids")
    if not all(is_valid_id(v) for v in ids):
        raise RequestRefused("bad_visitor_ids", "a visitor id is malformed")
    # None: nothing to compare with (no account id, or the site knows no e-mail for it).
    match = (same_email(account_email, email) if account_id and account_email else None)
    return {"kind": kind, "email": email, "lang": lang, "channel": channel, "text": text,
            "account_id": account_id, "account_match": match, "visitor_ids": ids,
            "fee": "due" if kind == "disclosure" and fee_yen > 0 else "none",
            "fee_yen": fee_yen if kind == "disclosure" else 0}
