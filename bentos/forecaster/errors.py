"""Exceptions of the forecaster.

ForecastError
├── ForecastInputError (also a ValueError): the request is invalid, so the service returns 422
│   ├── InsufficientDataError: too few observed points ("insufficient data" in the message)
│   ├── HorizonError: horizon below 1 or above the backend's limit
│   ├── QuantileLevelError: a quantile level outside (0, 1), duplicated, or none given
│   └── TimestampError: timestamps that do not match the values or do not increase
├── BackendUnavailableError (also a RuntimeError): a configured backend could not be loaded
└── BreachInputError (also a ValueError): breach analysis got an invalid threshold, direction or forecast
"""


class ForecastError(Exception):
    """Base class of every forecaster error."""


class ForecastInputError(ForecastError, ValueError):
    """An input series is invalid; the message names the value and the fix."""


class InsufficientDataError(ForecastInputError):
    """The context has fewer observed points than a forecast needs."""


class HorizonError(ForecastInputError):
    """The horizon is below 1 or above the backend's maximum."""


class QuantileLevelError(ForecastInputError):
    """A quantile level is outside (0, 1) or repeated, or the list is empty."""


class TimestampError(ForecastInputError):
    """Timestamps do not match the values, do not increase, or give an unusable step."""


class BackendUnavailableError(ForecastError, RuntimeError):
    """A backend that the settings require could not be loaded."""


class BreachInputError(ForecastError, ValueError):
    """Breach analysis got an invalid threshold, direction, step or forecast."""
