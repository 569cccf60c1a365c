"""Errors shared by the source connectors."""

from __future__ import annotations


class SourceError(RuntimeError):
    """A source cannot deliver (this part of) a channel: the load fails with this message."""
