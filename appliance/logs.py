"""Logging for the long-running commands: one line per event to stderr (journald under
systemd), the level from ``CHECKPOINT_LOG_LEVEL``."""

from __future__ import annotations

import logging
import os


def logging_setup() -> None:
    logging.basicConfig(
        level=os.environ.get("CHECKPOINT_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
    )
