"""The refusals of a prediction request, shared by the JSON protocols and the PNG decoder (so neither imports
the other): the handler answers InvalidInput with 400 and TooLarge with 413, with the message as it is."""

from __future__ import annotations


class InvalidInput(ValueError):
    """The request cannot be answered as sent: answered 400 with this message."""


class TooLarge(InvalidInput):
    """More rows than one request may carry: answered 413."""
