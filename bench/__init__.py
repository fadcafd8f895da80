"""Benchmarks (run as scripts: ``python bench/launch.py``); the apps here are served by gunicorn during a run."""
