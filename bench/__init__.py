"""The project's benchmark (`make bench`): figures, medians of repeated runs, written to
``bench-results.json`` at the repository root."""
