"""Doctest collection over the package: modules that act on import are left out."""
collect_ignore = ["polars_metrics/_kernels/__main__.py", "benchmarks", "notebooks"]
