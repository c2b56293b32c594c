"""The project's own exception types: every failure a user can cause is one of these."""


class ObesityError(Exception):
    """Base class: a clear, user-facing error (printed without a traceback, non-zero exit)."""


class DataError(ObesityError):
    """The data file is missing, unreadable or breaks the data contract."""


class ConfigError(ObesityError):
    """The composed configuration is inconsistent (beyond what the structured schema catches)."""
