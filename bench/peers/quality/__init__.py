"""The data-quality peers: one runner script per tool, each run in its own subprocess."""
