"""Celery task functions. Each takes ids, re-reads its rows, and is safe to run twice."""
