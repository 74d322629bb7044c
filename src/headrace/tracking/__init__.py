"""Experiment tracking: params, metrics, tags and artifacts of runs, in or out of pipelines."""
