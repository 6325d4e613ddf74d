"""The `benchmark_model` command our runner installs: one-shot runs, or `--hwnas_serve=DIR`.

`--hwnas_serve=DIR` keeps one runner process alive across blocks (`serve`);
anything else is TFLite's `benchmark_model` interface (`runner`).  Dispatching
here keeps `serve` → `runner` the only arrow between the two.
"""

from __future__ import annotations

import sys

from hwnas.devices.adbd import runner
from hwnas.devices.adbd.serve import serve

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("--hwnas_serve="):
        return serve(argv[0].partition("=")[2])
    return runner.main(argv)


if __name__ == "__main__":
    sys.exit(main())
