"""Benchmarks that print figures: `python -m bench.login_storm`, `python -m bench.hit_path`."""
