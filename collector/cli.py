"""The ``consent-mw`` console script.

Subcommands are imported only when invoked: ``consent-mw suppress`` talks HTTP and must not pay
for importing chDB, and each command lives in the module that owns its capability.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "demo": "clinic.cli:demo",
    "collector": "collector.cli_server:collector",
    "retention": "collector.cli_server:retention",
    "suppress": "collector.privacy.cli:suppress",
    "unsuppress": "collector.privacy.cli:unsuppress",
    "purge": "collector.privacy.cli:purge",
    "export": "collector.privacy.cli:export",
    "requests": "collector.privacy.cli:requests_",
    "audit": "collector.privacy.cli:audit",
    "dashboards": "dashboards.cli:dashboards",
    "seed": "dashboards.cli:seed",
    "staff": "collector.privacy.cli_staff:staff",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: Any = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise click.ClickException(f"{target} is not a command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="consent-mw")
def main() -> None:
    """consent-mw: consent-gated analytics for ASGI sites."""


if __name__ == "__main__":
    main()
