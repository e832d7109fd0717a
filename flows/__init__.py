"""Prefect flows and thin tasks, the ``stampflow`` command line, deployments."""
