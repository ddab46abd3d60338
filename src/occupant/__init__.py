"""Occupant: the user-lifecycle platform for operators of flexible workspace."""

__version__ = "0.1.0"
