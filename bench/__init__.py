"""Load benchmarks for the SCIM bridge (run ``python -m bench.scim_load``)."""
