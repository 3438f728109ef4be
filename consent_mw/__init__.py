"""consent-mw: consent-gated analytics for ASGI sites.

``ConsentMiddleware`` wraps any ASGI app; ``Settings`` configures it (``Settings.from_env()``);
``track`` / ``identify`` send the site's own events under the request's consent.

Layout (data flows from a request through ``consent`` into ``capture``):

- top level, what both sides share: ``settings`` (the one Settings), ``config`` (the loader
  and ``Secret`` the collector's and dashboards' settings read through too), ``errors`` (the
  exception tree), ``types`` (the ASGI shapes), ``state`` (a request's consent context),
  ``http`` (responses, the one error shape and the one same-origin rule: top level rather
  than under ``consent`` because the collector's own routes answer by the same rules),
  ``wire``, ``ids``, ``scrub``, ``clientip``, ``useragent``, ``ratelimit``, ``mac``,
  ``bounded``;
- ``consent``: reading a request's consent, deciding, cookies, the middleware and its send
  wrappers, its own routes, self-service, banner, tags, pages and records;
- ``capture``: the consent-gated pipeline from a page or event to a transport.
"""

from consent_mw.capture.api import identify, track
from consent_mw.consent.middleware import ConsentMiddleware
from consent_mw.settings import Settings

__all__ = ["ConsentMiddleware", "Settings", "identify", "track"]
