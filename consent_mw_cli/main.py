"""The ``consent-mw`` console script: the verbs of every package, each imported only when run.

This package sits above all the others (``consent_mw`` ← ``collector`` ← ``dashboards`` ←
``clinic`` ← ``consent_mw_cli``) because the group names commands from each of them, and a
lower package naming an upper one would turn the dependency direction around. It is not part
of the demo clinic (the top package until now) because a web process runs it too, where the
demo is of no use.

Commands are imported lazily: ``consent-mw suppress`` talks HTTP to a collector and must not
pay for importing chDB, and each command lives in the module that owns its capability.

A web process installs ``consent-mw`` alone and gets the verbs that only talk HTTP to a
collector. The collector, dashboards and demo need the ``[collector]`` extra; without it they
are left out of ``--help``, and running one prints a line saying what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

import click

EXTRA = "collector"
INSTALL_EXTRA = f"pip install 'consent-mw[{EXTRA}]'"
#: The top-level modules the ``[collector]`` extra installs (a test holds this list to the
#: extra in pyproject.toml).
EXTRA_MODULES = frozenset({
    "aiosmtpd", "argon2", "ahocorasick", "chdb", "clickhouse_connect", "cryptography",
    "geoip2", "jinja2", "jsonschema", "lz4", "markupsafe", "plotly", "prometheus_client",
    "python_multipart", "starlette", "uvicorn", "yaml",
})


@dataclass(frozen=True, slots=True)
class Verb:
    """Where a command lives (``"module:attribute"`` of a click command), and whether it
    needs the ``[collector]`` extra to run at all."""

    target: str
    needs_extra: bool


COMMANDS: dict[str, Verb] = {
    # The privacy verbs talk HTTP to a collector: a web-only install runs them. ("audit
    # verify --store" opens a store itself and then needs the extra.)
    "suppress": Verb("collector.privacy.cli:suppress", needs_extra=False),
    "unsuppress": Verb("collector.privacy.cli:unsuppress", needs_extra=False),
    "purge": Verb("collector.privacy.cli:purge", needs_extra=False),
    "export": Verb("collector.privacy.cli:export", needs_extra=False),
    "requests": Verb("collector.privacy.cli:requests_", needs_extra=False),
    "audit": Verb("collector.privacy.cli:audit", needs_extra=False),
    "evidence": Verb("collector.privacy.cli_evidence:evidence", needs_extra=False),
    "collector": Verb("collector.cli_server:collector", needs_extra=True),
    "retention": Verb("collector.cli_server:retention", needs_extra=True),
    "staff": Verb("collector.privacy.cli_staff:staff", needs_extra=True),  # argon2
    "dashboards": Verb("dashboards.cli:dashboards", needs_extra=True),
    "seed": Verb("dashboards.cli:seed", needs_extra=True),
    "demo": Verb("clinic.cli:demo", needs_extra=True),
}


def extra_installed() -> bool:
    """Whether every module of the ``[collector]`` extra can be found (none is imported)."""
    return all(_findable(name) for name in EXTRA_MODULES)


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a finder may refuse outright rather than find nothing
        return False


class MissingExtra(click.ClickException):
    """A command that needs the ``[collector]`` extra, on an install without it."""

    def __init__(self, command: str) -> None:
        super().__init__(f"consent-mw {command} needs the {EXTRA} extra: {INSTALL_EXTRA}")


class LazyGroup(click.Group):
    """Lists and loads commands from :data:`COMMANDS`; imports a command's module only when
    that command runs (or its help is shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        everything = extra_installed()
        return sorted(name for name, verb in COMMANDS.items()
                      if everything or not verb.needs_extra)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        verb = COMMANDS.get(cmd_name)
        if verb is None:
            return None
        if verb.needs_extra and not extra_installed():
            raise MissingExtra(cmd_name)
        module_name, attr = verb.target.split(":")
        try:
            command = getattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError as exc:
            raise _missing(exc, cmd_name) from None
        if not isinstance(command, click.Command):
            raise click.ClickException(f"{verb.target} is not a command")
        return command

    def invoke(self, ctx: click.Context) -> object:
        # A verb that runs on a web-only install may still reach for the extra in one of its
        # options (audit verify --store opens a store): one line, not a traceback.
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            raise _missing(exc, ctx.invoked_subcommand or "") from None

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        if not extra_installed():
            hidden = ", ".join(sorted(n for n, v in COMMANDS.items() if v.needs_extra))
            formatter.write_paragraph()
            formatter.write_text(f"This install runs the verbs that talk to a collector. "
                                 f"{hidden} come with: {INSTALL_EXTRA}")


def _missing(exc: ModuleNotFoundError, command: str) -> Exception:
    """The one-line refusal when the missing module is the extra's; else the error itself."""
    if (exc.name or "").split(".")[0] in EXTRA_MODULES:
        return MissingExtra(command)
    return exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="consent-mw")
def main() -> None:
    """consent-mw: consent-gated analytics for ASGI sites."""
