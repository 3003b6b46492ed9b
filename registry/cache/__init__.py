"""Node-cache mode: a pull-through cache of an upstream registry (docs/hpc-fanout.md)."""
