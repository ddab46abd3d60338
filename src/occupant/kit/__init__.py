"""Shared plumbing: settings, database, errors, security, small helpers."""
