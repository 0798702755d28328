"""Prometheus and Alertmanager configuration for OpsSeer: SLI recording rules, SLO alerts and their renderer."""
