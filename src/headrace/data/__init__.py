"""Data versions: comparing the stored versions of table assets."""
