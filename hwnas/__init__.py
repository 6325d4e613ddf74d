"""hwnas: hardware-aware NAS, the whole loop — profile, fit, search, report.

The Python API (`hwnas.api`) is re-exported here:

    import hwnas
    store = hwnas.profile("fbnet-cifar", "cpu:onnxruntime?threads=1", store="hw.db", archs="random:20")
    model = hwnas.fit(store, device="cpu:onnxruntime?threads=1")
    run = hwnas.search("fbnet-cifar", latency=model, data="digits", out="runs/a")
    hwnas.report(store, models=[model], runs=[run], out="report.html")

`hwnas.search` and `hwnas.report` are also the packages of those parts
(`hwnas.search.space`, `hwnas.report.render`); calling either runs the API
function of the same name.  Nothing here loads torch or a runtime.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

import hwnas.report as _report_pkg
import hwnas.search as _search_pkg
from hwnas.search.space import InputError

__version__ = "0.1.0"

#: Re-exported from `hwnas.api`, which is loaded on first use (PEP 562): every module of the
#: project runs this `__init__` first, and importing the API here made `hwnas.api` (and through
#: it `hwnas.reporting`) part of an import circle with the package itself; it also loaded the
#: API for every `import hwnas.search.space`.
_API = ("profile", "fit", "fit_networks", "plan", "train", "export")


def _api() -> types.ModuleType:
    return importlib.import_module("hwnas.api")


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(_api(), name)
    raise AttributeError(f"module 'hwnas' has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    """A package that is also the API function of its name (`hwnas.search(...)`, `hwnas.report(...)`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(_api(), self.__name__.rpartition(".")[2])(*args, **kwargs)


for _pkg in (_search_pkg, _report_pkg):
    _pkg.__class__ = _CallablePackage

search = _search_pkg
report = _report_pkg

__all__ = ["profile", "fit", "fit_networks", "plan", "search", "train", "export", "report", "InputError",
           "__version__"]
