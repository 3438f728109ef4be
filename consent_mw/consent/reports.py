"""The interaction beacon's reports: read, checked and classified. Pure.

``static/beacon.js`` posts ``{"events": [<report>...]}``; each report names its kind ``k``
and its page ``p`` (``location.pathname``), plus what that kind needs and nothing else. What
the script sends is the visitor's browser speaking, so it is checked strictly (a known kind,
exactly its keys, bounded strings and numbers) and everything is decided here, on the
server, from the site's settings: which hosts are apps, which hosts keep their paths, which
extensions are downloads. A report becomes an :class:`~consent_mw.capture.events.Interaction`
(or a :class:`Tagged` custom event): where it happened and what kind of thing was used. A
query string, a fragment, a link's user and password, a phone number or an address behind
``tel:``/``mailto:`` and a form's values never get this far; the capture build scrubs every
path and name that does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from consent_mw import wire
from consent_mw.capture.events import Interaction
from consent_mw.http import BadRequest
from consent_mw.scrub import scrub
from consent_mw.settings import Settings

MAX_REPORTS = 10  # a click sends one, a hidden page two
MAX_URL = 2048
MAX_NAME = 128  # a data-cmw-event name, as track() keeps it
MAX_FORM_ID = 128
#: What each kind carries besides ``k`` and ``p``.
FIELDS: dict[str, frozenset[str]] = {
    "out": frozenset({"u"}), "tel": frozenset(), "mailto": frozenset(),
    "download": frozenset({"u"}), "form": frozenset({"id", "a"}), "scroll": frozenset({"d"}),
    "engaged": frozenset({"s"}), "custom": frozenset({"n"}),
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST = re.compile(r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_][a-z0-9_-]{0,62})*")
_FORM_ID_UNSAFE = re.compile(r"[^\w.:-]")  # \w: letters and digits of any script, "_"


class Tagged(NamedTuple):
    """A click on an element the site tagged ``data-cmw-event="name"``: a custom event."""

    name: str
    page: str


Report = Interaction | Tagged


@dataclass(frozen=True, slots=True)
class Rules:
    """The site's beacon settings, read once: app hosts, hosts whose paths are kept,
    download extensions."""

    apps: Mapping[str, str]
    path_hosts: Mapping[str, str]
    extensions: frozenset[str]

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        apps: dict[str, str] = {}
        for pair in settings.beacon_app_hosts:
            host, _, app = pair.partition("=")
            apps[setting_host(host)] = app.strip()
        return cls(apps=apps,
                   path_hosts={setting_host(h): h for h in settings.beacon_path_hosts},
                   extensions=frozenset(e.strip().lstrip(".").lower()
                                        for e in settings.beacon_download_extensions))


def setting_host(host: str) -> str:
    """A configured host as links are compared with it: lower case, ASCII (IDNA)."""
    host = host.strip().lower().rstrip(".")
    try:
        return host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def listed(host: str, table: Mapping[str, str]) -> str | None:
    """The entry for ``host`` or its nearest listed parent domain: ``line.me`` covers
    ``liff.line.me``, never ``notline.me``."""
    name = host
    while name:
        found = table.get(name)
        if found is not None:
            return found
        name = name.partition(".")[2]
    return None


def parse_reports(data: Any, rules: Rules) -> list[Report]:
    """The reports of a beacon body, or :class:`BadRequest` (400) naming the first bad one;
    then none of the batch is kept."""
    if not isinstance(data, dict) or set(data) != {"events"}:
        raise BadRequest(400, 'expected a JSON object {"events": [...]}', "bad_report")
    events = data["events"]
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_REPORTS:
        raise BadRequest(400, f'"events" must be a list of 1 to {MAX_REPORTS} reports',
                         "bad_report")
    reports = []
    for index, raw in enumerate(events):
        try:
            reports.append(classify(raw, rules))
        except ValueError as exc:
            raise BadRequest(400, f"events[{index}]: {exc}", "bad_report") from None
    return reports


def classify(raw: Any, rules: Rules) -> Report:
    """One report, checked and classified; ValueError says what is wrong with it."""
    if not isinstance(raw, dict):
        raise ValueError("a report is a JSON object")
    kind = raw.get("k")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ValueError(f"unknown kind; one of {', '.join(FIELDS)}")
    extra = set(raw) - FIELDS[kind] - {"k", "p"}
    missing = (FIELDS[kind] | {"p"}) - set(raw)
    if extra or missing:
        raise ValueError(f"{kind!r} reports carry exactly k, p"
                         + "".join(f", {f}" for f in sorted(FIELDS[kind])))
    page = page_path(text(raw, "p", MAX_URL))
    if kind in ("tel", "mailto"):  # that it happened, and where: never the number or address
        return Interaction(kind, page)
    if kind == "out":
        host, path = link(text(raw, "u", MAX_URL))
        if host is None:
            raise ValueError("an outbound link is an http(s) URL")
        app = listed(host, rules.apps)
        if app is not None:  # the app, never the account the link opens
            return Interaction("app", page, target_host=host, target=app)
        return Interaction("outbound", page, target_host=host,
                           target_path=offsite_path(host, path, rules))
    if kind == "download":
        host, path = link(text(raw, "u", MAX_URL))
        ext = extension(path)
        return Interaction("download", page, target_host=host,
                           target_path=offsite_path(host, path, rules),
                           target=ext if ext in rules.extensions else None)
    if kind == "form":
        action = text(raw, "a", MAX_URL)
        host, kept = link(action) if action else (None, None)
        return Interaction("form", page, target_host=host,
                           target_path=None if kept is None else offsite_path(host, kept, rules),
                           target=form_id(text(raw, "id", MAX_FORM_ID)))
    if kind == "scroll":
        return Interaction("scroll", page, scroll_depth=wire.scroll_step(number(raw, "d", 100)))
    if kind == "engaged":
        seconds = number(raw, "s", 2**31)
        return Interaction("engaged", page,
                           engaged_seconds=min(seconds, wire.MAX_ENGAGED_SECONDS))
    name = text(raw, "n", MAX_NAME).strip()
    if not name:
        raise ValueError("a custom event needs a name")
    return Tagged(name, page)


def text(raw: Mapping[str, Any], key: str, limit: int) -> str:
    value = raw[key]
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{key!r} must be a string of at most {limit} characters")
    if _CONTROL.search(value):
        raise ValueError(f"{key!r} holds control characters")
    try:
        value.encode("utf-8")  # a lone surrogate ("\\udfff") passes JSON, not the wire
    except UnicodeEncodeError:
        raise ValueError(f"{key!r} is not valid Unicode") from None
    return value


def number(raw: Mapping[str, Any], key: str, limit: int) -> int:
    value = raw[key]
    if type(value) is not int or not 0 <= value <= limit:  # bool is an int: not here
        raise ValueError(f"{key!r} must be an integer from 0 to {limit}")
    return value


def page_path(raw: str) -> str:
    """The page a report came from, as a pageview's path: decoded, without query or
    fragment."""
    if not raw.startswith("/"):
        raise ValueError("'p' must be the page's path, starting with '/'")
    return path_only(raw)


def path_only(raw: str) -> str:
    """A URL path percent-decoded as the ASGI path of a page is, its query and fragment cut
    off whatever the client sent."""
    cut = min((i for i in (raw.find("?"), raw.find("#")) if i >= 0), default=len(raw))
    path = unquote(raw[:cut], errors="replace") or "/"
    if _CONTROL.search(path):  # "%0A" decodes to what the raw check let through
        raise ValueError("a path holds control characters once decoded")
    return path


def link(raw: str) -> tuple[str | None, str]:
    """(host, path) of a link: a path on this site (host None) or an http(s) URL; the query,
    the fragment and any user or password in it are dropped here."""
    if raw.startswith("/") and not raw.startswith("//"):
        return None, path_only(raw)
    try:
        parts = urlsplit(raw)
        hostname = parts.hostname
    except ValueError:
        raise ValueError("a link is a path or an http(s) URL") from None
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        raise ValueError("a link is a path or an http(s) URL")
    return link_host(hostname), path_only(parts.path or "/")


def link_host(raw: str) -> str:
    """A link's host, lower case and ASCII (IDNA); ValueError when it is none."""
    host = raw.strip().lower().rstrip(".")
    if ":" in host:  # an IPv6 literal (urlsplit took its brackets off)
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError("a link's host is not a host name") from None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("a link's host is not a valid domain name") from None
    if not _HOST.fullmatch(host):
        raise ValueError("a link's host is not a host name")
    return host


def offsite_path(host: str | None, path: str, rules: Rules) -> str | None:
    """A target's path as kept: this site's own, or another host's only when the site lists
    that host (``beacon_path_hosts``), never an app's (it names the account), whatever kind of
    report carries the link."""
    if host is None:
        return path
    if listed(host, rules.apps) is None and listed(host, rules.path_hosts) is not None:
        return path
    return None


def extension(path: str) -> str | None:
    """The lower-cased extension of a path's last segment (``price.PDF`` → ``pdf``)."""
    last = path.rstrip("/").rpartition("/")[2]
    stem, dot, ext = last.rpartition(".")
    return ext.lower() if dot and stem and ext else None


def form_id(raw: str) -> str | None:
    """A form's id as a label: letters, digits, ``_ . : -`` of any script; anything else
    (spaces, quotes, markup) becomes ``_``. Scrubbed first: once ``@``, ``+`` and spaces are
    ``_``, no e-mail or phone pattern would match any more."""
    cleaned = _FORM_ID_UNSAFE.sub("_", scrub(raw.strip()))
    return cleaned or None
