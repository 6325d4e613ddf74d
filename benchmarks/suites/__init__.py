"""The toolkit's own performance suites (dev only, not installed): `python -m benchmarks.suites.<name>`."""
