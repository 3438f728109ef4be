"""consent-mw's exceptions: one root, so a host can catch everything the package raises.

::

    ConsentMWError
    ├── SettingsError     config          a configuration value is missing or invalid
    │                                     (also a ValueError)
    ├── ConsentError      consent.decision  a consent submission that cannot be applied
    │                                     (also a ValueError; answered as 400)
    ├── BadRequest        http            a request to the middleware's own routes is refused
    │                                     (4xx, with a reason and a code)
    ├── TransportError    capture.transport  a batch did not reach the collector
    │                                     (``retryable``, ``retry_after``, ``status``)
    └── RightsError       consent.rights  the collector could not serve a visitor's request
        └── RightsBusy                    ... because its purge queue is full (retry later)

The middleware itself never lets one of these reach the host's response: analytics never
breaks the page. They surface from settings (at start), from the API a host calls, and in
logs; what the middleware and capture served over is counted in
``ConsentMiddleware.stats()``.
"""

from __future__ import annotations


class ConsentMWError(Exception):
    """The root of every exception consent-mw raises."""
