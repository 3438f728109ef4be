"""Visitor self-service: download or delete my data (interface stub, replaced by the rights work).

The middleware routes ``{prefix}/my-data`` here. ``handle`` returns None when self-service is
not configured, and the middleware then answers 404.
"""

from __future__ import annotations

from typing import Any

from consent_mw.state import RequestContext


class SelfService:
    def __init__(self, settings: Any, *, rights: Any = None) -> None:
        self.settings = settings
        self.rights = rights

    @property
    def enabled(self) -> bool:
        return self.rights is not None

    async def handle(
        self, ctx: RequestContext, scope: dict[str, Any], receive: Any, send: Any
    ) -> bool:
        """Serve the request and return True, or return False to let the caller 404."""
        return False
