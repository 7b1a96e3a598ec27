"""Where ``create_app`` was first defined, kept so ``collector.app:create_app`` and
``import collector.app`` go on working: the API itself is the ``collector.api`` package."""

from __future__ import annotations

from collector.api import API_VERSION, Settings, create_app

__all__ = ["API_VERSION", "Settings", "create_app"]
