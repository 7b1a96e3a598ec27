"""The reference provincial server for Checkpoint door units (DESIGN.md §6)."""
