"""The experiment-tracking peers: one runner script per tool, each run in its own subprocess."""
