"""consent-mw: consent-gated analytics for ASGI sites.

``ConsentMiddleware`` wraps any ASGI app; ``Settings`` configures it (``Settings.from_env()``).
"""

from consent_mw.middleware import ConsentMiddleware
from consent_mw.settings import Settings

__all__ = ["ConsentMiddleware", "Settings"]
