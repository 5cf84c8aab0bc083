"""Service plugin discovery through package entry points (group ``task_tracker.services``).

A plugin names its nameko service class, its gateway routes and its tables module as import strings, so the gateway
can load routes without importing nameko services, and the launcher can start services without
importing the gateway. Adding a service means adding a package and one entry point; nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points

GROUP = "task_tracker.services"


def load_object(spec: str):
    module_name, _, attr = spec.partition(":")
    return getattr(import_module(module_name), attr)


@dataclass(frozen=True)
class Plugin:
    name: str
    service: str  # "package.module:ServiceClass", a nameko service whose ``name`` equals ``name``
    routes: str  # "package.module:ROUTES", a sequence of tracker.routing.Route
    tables: str | None = None  # "package.module" declaring the service's tables on tracker.schema.metadata
    cli: str | None = None  # "package.module:register", adds the service's ``tracker`` subcommands

    def service_class(self):
        return load_object(self.service)

    def route_list(self):
        return load_object(self.routes)

    def register_commands(self, subparsers) -> None:
        if self.cli is not None:
            load_object(self.cli)(subparsers)


@cache
def discover() -> dict[str, Plugin]:
    found: dict[str, Plugin] = {}
    for ep in entry_points(group=GROUP):
        plugin = ep.load()
        if not isinstance(plugin, Plugin) or plugin.name != ep.name:
            raise RuntimeError(f"entry point {ep.name!r} does not name a Plugin called {ep.name!r}")
        found[plugin.name] = plugin
    if not found:
        raise RuntimeError(f"no service plugins found in entry point group {GROUP!r}; is the package installed?")
    return dict(sorted(found.items()))
