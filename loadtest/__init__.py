"""Benchmark harness: our registry vs docker-registry (CNCF distribution 2.8) vs nginx.

Run it as ``python -m loadtest bench``; see loadtest/README.md.
"""

__version__ = "0.1.0"
