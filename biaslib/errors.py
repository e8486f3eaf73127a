"""Exceptions that biaslib raises on purpose."""


class BiaslibError(Exception):
    """Base class for errors biaslib raises on purpose."""


class DataLayoutError(BiaslibError, FileNotFoundError):
    """Input data is missing or not in the expected layout. Message names the file/column and the expected layout."""
