"""Transitional: the collector's services live in ``collector.services``, one module per job.
``add_alert`` stays importable from here only because tests/test_sync.py (outside the
collector) imports it from this path; once it imports ``collector.services.alerts``, this
module goes."""

from __future__ import annotations

from collector.services.alerts import add_alert

__all__ = ["add_alert"]
