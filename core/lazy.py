"""Heavy libraries (numpy, pandas, scikit-learn, skops, pyarrow…) imported when first used, not
when Django loads the apps: every process (a web worker, a Celery worker running an export) loads
the services packages, and importing the whole scientific stack there cost ~200 MB of RSS that
most of them never use.

    np = lazy_module("numpy")    # the module is imported at the first np.<attribute>
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for a module until an attribute is read: then imports it, and keeps each
    attribute read on itself so later reads are plain attribute reads."""

    def __init__(self, name: str) -> None:
        self.__dict__["_lazy_name"] = name

    def _lazy_load(self) -> ModuleType:
        return importlib.import_module(self.__dict__["_lazy_name"])

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._lazy_load(), attr)
        self.__dict__[attr] = value
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_lazy_name']!r}>"


def lazy_module(name: str) -> Any:
    """A stand-in for `import <name>` that imports it at first use."""
    return LazyModule(name)
