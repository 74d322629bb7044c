"""Data quality: validating tables against suites of checks."""
