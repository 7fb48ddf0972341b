"""Verdicts built from measurements (timing of paired runs, and more)."""
