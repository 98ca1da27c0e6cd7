"""Benchmarks for pytest-conncache: the core cache against cachetools and cacheout,
and the pytest plugin's overhead on a large suite.

Run everything from the repository root with one command::

    python -m benchmarks                 # full run: core figures, then plugin overhead
    python -m benchmarks --quick         # a fast smoke run (smaller sizes, fewer repeats)
    python -m benchmarks core            # only the cache figures
    python -m benchmarks overhead        # only the plugin overhead
    python -m benchmarks --json out.json # also write every figure as JSON

Timings are best-of-N with the contenders interleaved, so noise on a shared
machine hits all of them alike; the ratios are the figures that matter.
"""
