"""Orchestration peers: the chain and fan-out workloads in Dagster, Prefect, Airflow, plain."""
