"""Helpers the test areas share, imported as ``support.<module>`` (pytest's ``pythonpath``
puts ``tests/`` on ``sys.path``). Fixtures stay in the ``conftest.py`` files; what a test
imports by name lives here:

- ``apps``: small host apps (Starlette, FastAPI) wrapped in the middleware, cookie helpers;
- ``capture``: request contexts and scopes built directly, a recording transport;
- ``wire``: wire-format events, records and gzip batches, the collector test token;
- ``privacy``: visitor-rights builders, direct store rows, staff accounts;
- ``dashboards``: rows for the dashboard tests, the seeded store's range;
- ``servers``: real uvicorn servers, processes and their memory, a driven browser.
"""
