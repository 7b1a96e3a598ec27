"""The reference provincial server for Checkpoint door units (docs/architecture.md §sync)."""
