"""Thin Python tools around the in-database patient-journey pipeline."""

__version__ = "0.1.0"
