"""The two ways reference data says no.

    ValueError
    ├── InvalidCode          a value (MRN, HS code, plate, country...) is not acceptable; the message says why
    └── ReferenceDataError   a bundled or operator reference file is malformed; the message names the entry

Both subclass `ValueError` so that pure callers can catch one thing; the API layer maps them to its own
domain errors. This module must not know about HTTP.
"""

from __future__ import annotations


class InvalidCode(ValueError):
    """A code a clerk or trader supplied is not valid. `str(error)` is the actionable reason."""


class ReferenceDataError(ValueError):
    """A reference data file (bundled or the operator's) cannot be used. `str(error)` names file and entry."""
