"""Report build cost, measured side by side in one run: `python -m benchmarks.suites.bench_report [--repeats N]`.

Figures (medians of N runs, printed as ratios):
- render time for 2 and 4 devices relative to 1 device (does the report scale per device?);
- share of the render spent drawing figures, against the template itself;
- HTML vs Markdown render time (same figures, other template);
- the heatmap as PNG vs SVG data URI: bytes and encode time (why the report embeds PNG).
Synthetic store-shaped data (benchmarks.report_sample), fbnet-cifar's 111 blocks per device.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from typing import Callable

import matplotlib.pyplot as plt

from benchmarks import report_figures as figs
from hwnas.report.render import build_context, render_report
from hwnas.report.data import latency_grid
from hwnas.report.sample import sample_data


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def heatmap_bytes_and_time(fmt: str, grids, labels, repeats: int) -> tuple[int, float]:
    """Encode the two-device heatmap in `fmt`; the figure is drawn the same way the report draws it."""
    size = 0

    def once() -> None:
        nonlocal size
        original = figs.to_data_uri

        def capture(fig, dpi: int = 100) -> str:
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
            plt.close(fig)
            return buf.getvalue().decode("latin-1")

        figs.to_data_uri = capture
        try:
            size = len(figs.latency_heatmaps(grids, labels).encode("latin-1"))
        finally:
            figs.to_data_uri = original

    elapsed = median_time(once, repeats)  # runs `once`, which sets `size`
    return size, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    r = args.repeats
    datasets = {n: sample_data(names=tuple(f"dev{i}" for i in range(n))) for n in (1, 2, 4)}
    t = {n: median_time(lambda d=d: render_report(d, "html"), r) for n, d in datasets.items()}
    two = datasets[2]
    t_ctx = median_time(lambda: build_context(two), r)
    t_md = median_time(lambda: render_report(two, "md"), r)
    labels = {d: d for d in two.device_order()}
    grids = {d: latency_grid(two.blocks, d, two.space) for d in two.device_order()}
    png_b, png_t = heatmap_bytes_and_time("png", grids, labels, r)
    svg_b, svg_t = heatmap_bytes_and_time("svg", grids, labels, r)
    print(f"report render (html), medians of {r}; 1 device: {t[1]:.2f} s")
    print(f"  2 devices / 1 device: {t[2] / t[1]:.2f}x   4 devices / 1 device: {t[4] / t[1]:.2f}x")
    print(f"  figures+tables share of a 2-device render: {t_ctx / t[2]:.2f}  (template: {1 - t_ctx / t[2]:.2f})")
    print(f"  markdown / html render time: {t_md / t[2]:.2f}x")
    print(f"heatmap (2 devices, 22x9 cells each): png {png_b / 1024:.0f} KiB, svg {svg_b / 1024:.0f} KiB;"
          f" svg/png bytes {svg_b / png_b:.2f}x, svg/png encode time {svg_t / png_t:.2f}x")


if __name__ == "__main__":
    main()
