"""Lazy package attributes: a package's public names are imported from their modules on first use,
so importing the package (e.g. for CLI flag generation) does not import torch."""

from __future__ import annotations

import importlib
from typing import Any


def lazy_export(package: str, exports: dict[str, str], namespace: dict[str, Any], name: str) -> Any:
    """Import ``name`` from ``package.<exports[name]>`` (or from ``exports[name]`` itself when it is
    a dotted module path), cache it in ``namespace`` and return it.

    Raises:
        AttributeError: ``name`` is not one of ``exports``.
    """
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module if "." in module else f"{package}.{module}"), name)
    namespace[name] = value
    return value
