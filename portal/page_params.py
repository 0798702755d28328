"""Parsing of the HTML pages' query and path parameters.

The pages declare their parameters as plain strings and parse them here. Otherwise FastAPI would reject an
invalid value before the view runs, and the app-wide RequestValidationError handler would return JSON to a
browser instead of the portal's HTML error page. The JSON API keeps FastAPI's validation.
"""

import re
from typing import get_args

from portal.api import MAX_ID, StatusFilter

STATUS_VALUES: tuple[str, ...] = get_args(StatusFilter)

# Only ASCII digits: int() would also accept signs, spaces, underscores and other scripts' digits.
DIGITS = re.compile(r"[0-9]+")

# Error messages show at most this many characters of an invalid value, so a long query string cannot
# fill the page.
MAX_SHOWN_VALUE_CHARS = 100


class InvalidPageParameter(ValueError):
    """A page's query or path parameter has an invalid value.

    The message names the parameter, shows the value and lists the allowed values.
    """

    def __init__(self, *, location: str, name: str, value: str, allowed: str) -> None:
        self.location = location
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(
            f"Invalid value {_shown(value)} for the {location} parameter '{name}'. Allowed values: {allowed}."
        )


def _shown(value: str) -> str:
    if len(value) > MAX_SHOWN_VALUE_CHARS:
        value = value[:MAX_SHOWN_VALUE_CHARS] + "…"
    return f"'{value}'"


def _parse_int(raw: str, *, location: str, name: str, minimum: int, maximum: int) -> int:
    # A value longer than the maximum's digits is out of range, and checking the length first keeps int()
    # away from huge strings.
    if DIGITS.fullmatch(raw) and len(raw) <= len(str(maximum)) and minimum <= int(raw) <= maximum:
        return int(raw)
    raise InvalidPageParameter(
        location=location, name=name, value=raw, allowed=f"an integer from {minimum} to {maximum}"
    )


def parse_status(raw: str | None) -> str | None:
    """Parse the `status` filter of the incident list. None means no filter."""
    if raw is None or raw in STATUS_VALUES:
        return raw
    raise InvalidPageParameter(location="query", name="status", value=raw, allowed=", ".join(STATUS_VALUES))


def parse_offset(raw: str | None) -> int:
    """Parse the `offset` of the incident list. None means the first page."""
    if raw is None:
        return 0
    return _parse_int(raw, location="query", name="offset", minimum=0, maximum=MAX_ID)


def parse_incident_id(raw: str) -> int:
    """Parse the incident id in the path of the incident page."""
    return _parse_int(raw, location="path", name="incident_id", minimum=1, maximum=MAX_ID)
