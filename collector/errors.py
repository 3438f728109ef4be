"""The collector's exceptions: one root, so a host embedding the collector can catch them all.

::

    CollectorError
    ├── StoreError        the store could not be opened or a statement failed (RuntimeError)
    ├── PrivacyError      a visitor-rights request that is malformed: 400 (ValueError)
    ├── PurgeFailed       a purge's batch failed; the audit trail resumes it (RuntimeError)
    ├── PurgeQueueFull    more purges wait than the queue holds: 503, Retry-After (RuntimeError)
    ├── QueryError        a dashboard query the catalogue refuses: 400 (ValueError)
    ├── WriteRefused      a dashboard note or saved segment that is malformed: 400 (ValueError)
    ├── BatchRefused      a batch that is not the wire shape: 400, nothing stored (ValueError)
    ├── BodyTooLarge      a request body over its limit: 413 (ValueError)
    │   └── FormTooLarge  ... an HTML form's body
    ├── BadBody           a body that cannot be decoded (bad gzip, an unknown encoding)
    ├── RequestRefused    a privacy request or action not allowed now: 400/409/429 (ValueError)
    │   └── UnknownRequest  ... no request has that reference number: 404
    ├── TemplateError     a clinic's mail template that cannot be used (at start; ValueError)
    └── LoginBusy         too many password checks at once: 503 (RuntimeError)

Each is defined beside the code that raises it (``collector.store.StoreError``,
``collector.privacy.subjects.PrivacyError``, ``collector.privacy.purge.PurgeFailed``,
``collector.privacy.purge_queue.PurgeQueueFull``, ``collector.query.params.QueryError``,
``collector.notes.WriteRefused``,
``collector.ingest.validate.BatchRefused``, ``collector.web.BodyTooLarge`` and
``FormTooLarge``, ``collector.ingest.api.BadBody``, ``collector.logins.LoginBusy``,
``collector.requests.model.RequestRefused`` and ``UnknownRequest``,
``collector.requests.mail.TemplateError``); a
test checks that every exception class in the package derives from :class:`CollectorError`
and is drawn above. The second base, where there is one, keeps ``except ValueError`` /
``except RuntimeError`` callers working.

Not in the tree: the command line's usage errors are click's own (click prints them and sets
the exit status), and settings fail with ``consent_mw.config.SettingsError``, which every
package's settings share. The in-process transport raises the web side's
``consent_mw.capture.transport.TransportError``, exactly as the HTTP transport does.
"""

from __future__ import annotations


class CollectorError(Exception):
    """The root of every exception the collector raises."""
