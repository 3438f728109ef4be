"""``python -m consent_mw_cli``: the ``consent-mw`` console script without its wrapper."""

from consent_mw_cli.main import main

main()
