"""The receptionist's live screen: the only rich importer for it (the CLI may use rich too)."""
