"""Forecaster model service: quantile forecasts of metric series from Chronos or a statistical backend.

Modules: `schema` (request and response models), `hygiene` (cleaning and validation of input series),
`backends` (Chronos, statistical and seasonal-naive forecasters), `breach` (SLO breach analysis of a
forecast, pure numpy), `settings` and `service` (the BentoML service). Only `service` and `backends`
import torch or bentoml, so workers can import the others cheaply.
"""
