"""Every exception the collector defines derives from CollectorError and is in the drawn tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import click

import collector
from collector import errors
from collector.errors import CollectorError


def defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(collector.__path__, "collector."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__):
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_collector_exception_derives_from_the_root_and_is_drawn() -> None:
    found = defined_exceptions()
    # Usage errors of the command line are click's, which prints them and sets the exit code.
    ours = {path: cls for path, cls in found.items() if not issubclass(cls, click.ClickException)}
    assert len(ours) >= 10
    assert {path for path, cls in ours.items() if not issubclass(cls, CollectorError)} == set()
    drawn = set(re.findall(r"^ {4}(?:[│ ]*[├└]── )?(\w+)", errors.__doc__ or "", re.MULTILINE))
    assert {cls.__name__ for cls in ours.values()} == drawn
