"""Benchmarks at London scale: a synthetic dataset in its own PostgreSQL database (`bench.dataset`), timings
through the whole Django stack against a hand-written SQL floor (`bench.run`), and a load test of gunicorn
with concurrent clinicians signing in (`bench.loadtest`). See docs/SCALING.md for the figures.
"""
