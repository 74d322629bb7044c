"""Planning and running assets: executors, retries, timeouts, caching, resume."""
