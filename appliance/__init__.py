"""Checkpoint: the door appliance that logs contact-tracing app phones at an office entrance."""

__version__ = "0.1.0"
