"""Fuzzing of the weight readers (RELIABILITY.md ST-4, CV-2): targets, mutators, an engine.

CI replays the corpus and fuzzes each target for a short time (test_fuzz.py); a longer
campaign is `python -m tests.fuzz --target all --seconds 300` from the repository root.
"""
