"""The ASGI shapes every module of the package speaks, named once.

consent_mw is pure ASGI (no web framework), so these are the spec's own types, not a
framework's: a scope and messages are plain mappings, ``receive`` and ``send`` coroutines.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: Response headers as the middleware builds them.
Headers = list[tuple[bytes, bytes]]
