"""Shared core of the task tracker: settings, database, schema, errors, hashing, plugins, CLI."""

__version__ = "0.1.0"
