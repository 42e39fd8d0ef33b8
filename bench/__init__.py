"""Benchmarks that print side-by-side ratios; results go to bench/results/ (gitignored)."""
