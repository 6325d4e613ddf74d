"""The report (installed as `hwnas.report`) and the toolkit's own perf suites.

`benchmarks/suites/` is not installed: run a suite from a checkout with
`python -m benchmarks.suites.<name>`, or all of them with `make bench`.
"""
