"""Prefect flows: they sequence tasks and decide."""
