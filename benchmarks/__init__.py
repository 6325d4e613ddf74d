"""Device benchmark reports and the toolkit's own performance suites (`python -m benchmarks.<name>`)."""
