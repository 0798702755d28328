"""BentoML services for OpsSeer's AI capabilities.

This package is for one BentoML service per capability (the forecaster, runbook question answering and
speech-to-text) and a gateway service that composes them with `bentoml.depends`, so that one
`bentoml serve` serves them all. bentofile.yaml contains the build settings. None of the services is
written yet. Until a model service is configured, the incident pipeline's forecast and runbook steps
record "not configured" in the timeline.
"""
