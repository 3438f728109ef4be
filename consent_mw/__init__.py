"""consent-mw: consent-gated analytics for ASGI sites.

``ConsentMiddleware`` wraps any ASGI app; ``Settings`` configures it (``Settings.from_env()``);
``track`` / ``identify`` send the site's own events under the request's consent.
"""

from consent_mw.capture.api import identify, track
from consent_mw.consent.middleware import ConsentMiddleware
from consent_mw.settings import Settings

__all__ = ["ConsentMiddleware", "Settings", "identify", "track"]
