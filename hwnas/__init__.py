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

import types
from typing import Any

import hwnas.report as _report_pkg
import hwnas.search as _search_pkg
from hwnas.api import export, fit, fit_networks, plan, profile, train
from hwnas.api import report as _report
from hwnas.api import search as _search
from hwnas.search.space import InputError

__version__ = "0.1.0"


class _CallablePackage(types.ModuleType):
    """A package that is also the API function of its name (`hwnas.search(...)`, `hwnas.report(...)`)."""

    _api_function: Any

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._api_function(*args, **kwargs)


for _pkg, _fn in ((_search_pkg, _search), (_report_pkg, _report)):
    _pkg.__class__ = _CallablePackage
    _pkg._api_function = _fn  # type: ignore[attr-defined]

search = _search_pkg
report = _report_pkg

__all__ = ["profile", "fit", "fit_networks", "plan", "search", "train", "export", "report", "InputError",
           "__version__"]
