"""GitHub issues for incidents: the API client, issue and comment bodies, and the issue store."""
