"""Monitors: drift and performance over windows of a deployment's prediction log or an
asset's versions, alerts and retraining."""
