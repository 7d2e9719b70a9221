"""The fault catalog: kinds registered by name, checked at registration.

Built-in backends register themselves when their module is imported; the
registry imports them lazily, the first time someone asks for a kind, so the
CLI's start-up pays nothing for backends it does not use. Every module or
package inside ``chaosrunner.faults`` other than the infrastructure modules
below is a backend: adding a backend is adding a module, nothing to list. Backend modules keep
their third-party clients (docker, kubernetes, psycopg) out of module scope for
the same reason: importing a backend to read its params must stay cheap.

Like pluggy, the registry validates a plug-in when it registers, and every
error names the plug-in, so a broken backend fails loudly at import time
rather than mid-run.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from typing import TypeVar

from chaosrunner.errors import RegistrationError
from chaosrunner.faults.base import Fault, FaultParams, FaultSelector

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9]*(\.[a-z0-9][a-z0-9-]*)+$")

INFRASTRUCTURE_MODULES = frozenset({"base", "registry", "catalog", "connections", "holder"})
"""Modules of chaosrunner.faults that define no fault kinds."""


def builtin_backend_modules() -> tuple[str, ...]:
    """The backend modules shipped in chaosrunner.faults, found on disk."""
    import pkgutil

    import chaosrunner.faults as package

    return tuple(
        f"{package.__name__}.{module.name}"
        for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda module: module.name)
        if module.name not in INFRASTRUCTURE_MODULES and not module.name.startswith("_")
    )


FaultClass = TypeVar("FaultClass", bound=type[Fault])


class FaultRegistry:
    def __init__(self, discover: bool = False) -> None:
        self._kinds: dict[str, type[Fault]] = {}
        self._discover = discover

    def register(self, fault_class: FaultClass) -> FaultClass:
        """Add a fault kind; usable as a class decorator."""
        self._validate(fault_class)
        self._kinds[fault_class.kind] = fault_class
        return fault_class

    def get(self, kind: str) -> type[Fault] | None:
        self._load_builtins()
        return self._kinds.get(kind)

    def kinds(self) -> list[str]:
        self._load_builtins()
        return sorted(self._kinds)

    def __iter__(self) -> Iterator[type[Fault]]:
        return (self._kinds[kind] for kind in self.kinds())

    def _load_builtins(self) -> None:
        if self._discover:
            self._discover = False
            for module in builtin_backend_modules():
                importlib.import_module(module)

    def _validate(self, fault_class: type) -> None:
        name = getattr(fault_class, "__qualname__", repr(fault_class))
        if not (inspect.isclass(fault_class) and issubclass(fault_class, Fault)):
            raise RegistrationError(f"fault plug-in {name}: is not a subclass of chaosrunner Fault")
        kind = getattr(fault_class, "kind", None)
        if not isinstance(kind, str) or not KIND_PATTERN.match(kind):
            raise RegistrationError(
                f"fault plug-in {name}: kind {kind!r} must look like 'backend.fault-name'"
            )
        if kind in self._kinds and self._kinds[kind] is not fault_class:
            other = self._kinds[kind].__qualname__
            raise RegistrationError(f"fault plug-in {name}: kind {kind!r} is already registered by {other}")
        if not isinstance(getattr(fault_class, "summary", None), str) or not fault_class.summary.strip():
            raise RegistrationError(f"fault plug-in {name} ({kind}): needs a one-sentence 'summary'")
        if not (inspect.isclass(fault_class.Params) and issubclass(fault_class.Params, FaultParams)):
            raise RegistrationError(f"fault plug-in {name} ({kind}): Params must subclass FaultParams")
        selector = fault_class.Selector
        if selector is not None and not (inspect.isclass(selector) and issubclass(selector, FaultSelector)):
            raise RegistrationError(
                f"fault plug-in {name} ({kind}): Selector must subclass FaultSelector or be None"
            )
        if inspect.isabstract(fault_class):
            missing = ", ".join(sorted(fault_class.__abstractmethods__))
            raise RegistrationError(f"fault plug-in {name} ({kind}): does not implement {missing}")


registry = FaultRegistry(discover=True)
"""The process-wide catalog every layer looks kinds up in."""

register = registry.register
