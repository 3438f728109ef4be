"""The ``consent-mw`` command line: one group over the verbs of every package (see ``main``)."""
