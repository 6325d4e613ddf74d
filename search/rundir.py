"""One owner of a run directory: every file a search, training or export writes there, and every reader.

A run directory (`hwnas search --out RUN`) holds:

- `arch.json`        the searched architecture and its predicted latency (the search's result)
- `history.json`     one entry per search epoch, with the search's config
- `candidates.json`  architectures sampled from the final distribution, ranked
- `checkpoint.pt`    the search state (weights, θ, optimizers, RNG) for `--resume`
- `model.pt`         trained weights (`hwnas train`), a plain state dict
- `train.json`       the training result (`hwnas train`)
- `model.onnx|tflite` exports (`hwnas export`)

JSON is written atomically (a crash leaves the previous file or none), and
the torch files are plain state dicts read back with `weights_only=True`.
Nothing here imports torch: readers such as `hwnas report` stay light.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from hwnas.search.space import InputError, SearchSpace, load_arch_file
from hwnas.search.space.jsonsafe import finite, loads

__all__ = ["Run"]


def _write_json(path: Path, data: Any) -> None:
    """Write JSON atomically with the mode a plain open() would give (umask honoured)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(finite(data), fh, indent=2, allow_nan=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_torch(path: Path, obj: Any) -> Path:
    """torch.save to a temporary file in the same folder, then rename over `path`."""
    import torch  # only writers of weights and checkpoints need torch

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _read_json(path: Path) -> Any:
    """A run file's JSON (deep nesting and non-finite numbers refused in one line by `jsonsafe`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return loads(data, str(path))


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _entries(data: Any, key: str) -> list[dict[str, Any]]:
    items = data.get(key) if isinstance(data, dict) else data
    return [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []


class Run:
    """A run directory.  `Run(path)` accepts the directory or its `arch.json`."""

    ARCH = "arch.json"
    HISTORY = "history.json"
    CANDIDATES = "candidates.json"
    CHECKPOINT = "checkpoint.pt"
    WEIGHTS = "model.pt"
    TRAINING = "train.json"

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.path = path.parent if path.name == self.ARCH and not path.is_dir() else path

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # -- locations ----------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint_path(self) -> Path:
        return self.file(self.CHECKPOINT)

    @property
    def weights_path(self) -> Path:
        return self.file(self.WEIGHTS)

    def export_path(self, fmt: str) -> Path:
        return self.file(f"model.{fmt}")

    @property
    def is_search(self) -> bool:
        """A finished search lives here (it holds arch.json)."""
        return self.file(self.ARCH).is_file()

    @property
    def is_trained(self) -> bool:
        return self.weights_path.is_file()

    # -- writers (the search, training and export call these) ---------------------------
    def prepare(self) -> None:
        """Create the directory for a new search or training output."""
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"run directory {self.path} is a file")
        self.path.mkdir(parents=True, exist_ok=True)

    def write_history(self, config: dict[str, Any], epochs: list[dict[str, Any]], meta: dict[str, Any]) -> None:
        _write_json(self.file(self.HISTORY), {"config": config, "epochs": epochs, **meta})

    def write_candidates(self, space: str, ranked: list[dict[str, Any]]) -> None:
        _write_json(self.file(self.CANDIDATES), {"space": space, "candidates": ranked})

    def write_result(self, result: dict[str, Any]) -> None:
        """The search's result (`arch.json`): space, arch (the space's JSON form), latency, accuracy."""
        _write_json(self.file(self.ARCH), result)

    def write_training(self, result: dict[str, Any]) -> None:
        _write_json(self.file(self.TRAINING), result)

    def save_weights(self, state_dict: dict[str, Any]) -> Path:
        """Trained weights as a plain state dict (read back with `weights_only=True`)."""
        return _save_torch(self.weights_path, state_dict)

    def save_checkpoint(self, state: dict[str, Any]) -> Path:
        """The search's checkpoint, atomically: a crash mid-write leaves the previous one to resume from."""
        return _save_torch(self.checkpoint_path, state)

    @classmethod
    def load_architecture(cls, path: str | Path, space_name: str | None = None) -> tuple[SearchSpace, Any]:
        """The (space, architecture) of a run directory, its arch.json, or any architecture file."""
        path = Path(path)
        if path.is_dir() or path.name == cls.ARCH:
            return cls(path).architecture(space_name)
        space, arch, _ = load_arch_file(path, space_name)
        return space, arch

    # -- readers ------------------------------------------------------------------------
    def _require(self) -> None:
        if not self.path.is_dir():
            raise InputError(f"run directory not found: {self.path}")
        if not self.is_search:
            raise InputError(f"{self.path} holds no {self.ARCH}; is it a search run directory?")

    def result(self) -> dict[str, Any]:
        """The raw `arch.json` record."""
        self._require()
        data = _read_json(self.file(self.ARCH))
        if not isinstance(data, dict) or "arch" not in data:
            raise InputError(f"{self.file(self.ARCH)} has no 'arch' field")
        return data

    def architecture(self, space_name: str | None = None) -> tuple[SearchSpace, Any]:
        """The space and the searched architecture (in the space's own type)."""
        self._require()
        space, arch, _ = load_arch_file(self.file(self.ARCH), space_name)
        return space, arch

    def history(self) -> list[dict[str, Any]]:
        path = self.file(self.HISTORY)
        return _entries(_read_json(path), "epochs") if path.is_file() else []

    def config(self) -> dict[str, Any]:
        path = self.file(self.HISTORY)
        data = _read_json(path) if path.is_file() else {}
        return data.get("config", {}) if isinstance(data, dict) else {}

    def recorded(self, key: str) -> Any:
        """A value the search recorded beside its history (device, paths, threads, ...), or None."""
        path = self.file(self.HISTORY)
        data = _read_json(path) if path.is_file() else {}
        return data.get(key) if isinstance(data, dict) and key not in ("config", "epochs") else None

    def candidates(self) -> list[dict[str, Any]]:
        path = self.file(self.CANDIDATES)
        return _entries(_read_json(path), "candidates") if path.is_file() else []

    def training(self) -> dict[str, Any] | None:
        """What `hwnas train` recorded here, or None before training."""
        path = self.file(self.TRAINING)
        if not path.is_file():
            return None
        data = _read_json(path)
        return data if isinstance(data, dict) else None

    def accuracy(self) -> tuple[float | None, str]:
        """The run's accuracy and where it comes from: `train` (test set, from scratch) or `search`."""
        trained = self.training()
        if trained is not None and _finite(trained.get("test_acc")) is not None:
            return _finite(trained["test_acc"]), "train"
        result = self.result()
        acc = _finite(result.get("val_acc"))
        if acc is None:
            history = self.history()
            acc = _finite(history[-1].get("val_acc")) if history else None
        return acc, ("search" if acc is not None else "")
