"""Serving: an HTTP scoring server for registered models, and its prediction log."""
