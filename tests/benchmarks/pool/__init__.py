"""Modules of the worker-pool load benchmark (``tests/benchmarks/load_pool.py``)."""
