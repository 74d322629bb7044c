"""Monitors: drift and performance over windows of a deployment's prediction log,
alerts and retraining."""
