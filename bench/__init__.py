"""Benchmarks: adserver's hot paths against a bare Starlette baseline (``python -m bench``)."""
