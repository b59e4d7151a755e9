"""Delivery: the change stream's dispatcher, target lanes (jobs), the relay and its bookkeeping."""
