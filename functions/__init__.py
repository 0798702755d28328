"""Incident store, Alertmanager trigger and the Celery task functions that enrich incidents."""
