"""Read-only query endpoint for dashboards in another process (stub; dashboards work fills it)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute


def build_routes(service: Any) -> list[BaseRoute]:
    return []
