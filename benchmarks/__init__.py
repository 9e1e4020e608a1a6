"""Benchmarks that print figures (not tests): client ceiling, key presses, accuracy, screen lag,
start-up. Each module runs on its own (`python benchmarks/NAME.py`); `run.py` runs them all.
"""
