"""The serving peers: a setup runner per tool (own venv), the load scripts and the checks."""
