"""consent-mw's exceptions: one root, so a host can catch everything the package raises.

::

    ConsentMWError
    ├── SettingsError        a configuration value is missing or invalid (also a ValueError)
    ├── ConsentError         a consent submission that cannot be applied (also a ValueError)
    ├── BadRequest           a request to the middleware's own routes is refused (4xx)
    ├── TransportError       a batch did not reach the collector (retryable or not)
    └── RightsError          the collector could not serve a visitor's request
        └── RightsBusy       ... because its purge queue is full (retry later)

The middleware itself never lets one of these reach the host's response: analytics never
breaks the page. They surface from settings (at start), from the API a host calls, and in logs.
"""

from __future__ import annotations


class ConsentMWError(Exception):
    """The root of every exception consent-mw raises."""
