"""The team server: one HTTP API over the metadata store (issue 8, in progress)."""
