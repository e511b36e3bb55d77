"""Outcome registry for ketamine infusion therapy in chronic and refractory migraine."""

__version__ = "0.1.0"
CONTRACT_VERSION = 1
