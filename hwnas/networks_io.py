"""Files of many networks for the CLI: architecture lists, timing CSVs, batch predictions, network suggestions.

The CLI's glue between files a user keeps and `latency_models`: `hwnas predict
--archs FILE`, `hwnas evaluate --networks timings.csv` and `hwnas profile
--archs suggest:N --prior M` call these, a notebook can too.  Every error is
one `InputError` line that names the file and line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from hwnas.search.space import InputError, SearchSpace, get_space

__all__ = ["read_archs", "read_timings", "predict_archs", "evaluate_timings", "suggest_archs"]


def _text(path: Path, what: str) -> str:
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None


def _is_arch_csv(first: str) -> bool:
    try:
        header = next(csv.reader([first]))
    except csv.Error:
        return False
    return "arch" in [h.strip() for h in header]


def read_archs(path: str | Path) -> list[str]:
    """Architectures from a file: one per line (blank lines, `#` comments skipped), or a CSV with an `arch` column."""
    path = Path(path)
    text = _text(path, "architectures")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{path} holds no architectures")
    if _is_arch_csv(lines[0]):
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, comment=None)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
        df.columns = [str(c).strip() for c in df.columns]
        archs = [str(a).strip() for a in df["arch"]]
        empty = [i for i, a in enumerate(archs) if not a]
        if empty:
            raise InputError(f"{path} line {empty[0] + 2}: empty arch")
        if not archs:
            raise InputError(f"{path} holds no architectures")
        return archs
    return [ln.strip() for ln in lines]


def read_timings(path: str | Path) -> pd.DataFrame:
    """A CSV of whole-network timings: columns `arch` and `latency_ms` (positive ms); others are ignored."""
    path = Path(path)
    _text(path, "network timings")
    try:
        df = pd.read_csv(path, dtype={"arch": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = {"arch", "latency_ms"} - set(df.columns)
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(sorted(missing))} (needs arch, latency_ms)")
    if df.empty:
        raise InputError(f"{path} holds no timings")
    lat = pd.to_numeric(df["latency_ms"], errors="coerce")
    bad = lat.isna() | ~np.isfinite(lat.fillna(0)) | (lat <= 0)
    if bad.any():
        raise InputError(f"{path} line {int(np.flatnonzero(bad)[0]) + 2}: latency_ms must be a positive number")
    return pd.DataFrame({"arch": df["arch"].astype(str).str.strip(), "latency_ms": lat.astype(float)})


def _checked(space: SearchSpace, archs: Sequence[str], where: str, first_line: int) -> list[Any]:
    """Parsed architectures; the first bad one is named by its line in `where`."""
    out: list[Any] = []
    for i, a in enumerate(archs):
        try:
            out.append(space.parse(a))  # parsed once: the batch prediction takes the space's own type
        except (InputError, ValueError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{where} line {i + first_line}: {msg}") from None
    return out


def predict_archs(model: Any, archs: Sequence[str], where: str = "architectures", first_line: int = 1) -> pd.DataFrame:
    """Predicted ms of every architecture (columns arch, predicted_ms), in input order."""
    from hwnas.latency_models.fastfields import predict_many

    space = get_space(model.space)
    parsed = _checked(space, archs, where, first_line)
    return pd.DataFrame({"arch": list(archs), "predicted_ms": predict_many(model, space, parsed)})


def evaluate_timings(model: Any, path: str | Path, worst: int = 5) -> dict[str, Any]:
    """The store-evaluation metrics (±5/10/15%, RMSE, RMSPE, ρ, τ, worst cases) against a timings CSV."""
    from hwnas.latency_models.metrics import evaluate, worst_cases

    from hwnas.fitting import in_fit
    from hwnas.latency_models.fastfields import predict_many

    timings = read_timings(path)
    space = get_space(model.space)
    parsed = _checked(space, list(timings["arch"]), str(path), 2)
    pred = predict_many(model, space, parsed)
    y = timings["latency_ms"].to_numpy(dtype=float)
    return {"networks": str(path), "model_device": model.device, "space": model.space,
            "in_fit": in_fit(model, space, parsed),
            **evaluate(pred, y), "worst": worst_cases(pred, y, list(timings["arch"]), max(0, worst))}


def suggest_archs(space: SearchSpace, n: int, priors: Sequence[str | Path] = (), seed: int = 0,
                  pool: int | None = None, measured: Sequence[Any] = ()) -> list[Any]:
    """The `n` networks whose timings teach a transfer from `priors` most (greedy D-optimal over random candidates).

    Candidates: `pool` random architectures of the space (default max(2000, 20n)), seeded.
    `measured`: architectures already timed on the device.  If they are all among these picks, the
    picks stand (the same command again resumes); otherwise the picks complement them.
    """
    from hwnas.latency_models.io import load_model
    from hwnas.latency_models.selection import suggest
    from hwnas.profiler.enumerate import random_archs

    if n < 1:
        raise InputError(f"--archs suggest:N needs N >= 1, got {n}")
    models = []
    for p in priors:
        m = load_model(p)
        if m.space != space.name:
            raise InputError(f"--prior {p} is a model for space {m.space!r}, not {space.name!r}")
        models.append(m)
    candidates = random_archs(space, pool or max(2000, 20 * n), seed)
    if n > len(candidates) - len(measured):
        raise InputError(f"suggest:{n} asks for more networks than the {len(candidates)} candidates drawn "
                         f"(less the {len(measured)} already measured)")
    picks = suggest(space, models, candidates, n)
    own = {space.format(candidates[i]) for i in picks}
    if measured and not {space.format(a) for a in measured} <= own:
        # The store holds networks this command did not pick (another seed or N, random ones): design
        # beside them.  Stored networks that are all among its own picks are a run being resumed (or
        # extended by a larger N whose greedy picks begin with them), which keeps them.
        picks = suggest(space, models, candidates, n, measured=measured)
    return [candidates[i] for i in picks]
