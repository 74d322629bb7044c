"""Tests of the metadata store, one suite run against SQLite and PostgreSQL."""
