"""Peer tools measured side by side with headrace (each in its own virtual environment)."""
