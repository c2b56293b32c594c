"""The project's own exception types: every failure a user can cause is one of these."""


class ObesityError(Exception):
    """Base class: a clear, user-facing error (printed without a traceback, non-zero exit)."""


class DataError(ObesityError):
    """The data file is missing, unreadable or breaks the data contract."""


class ConfigError(ObesityError):
    """The composed configuration is inconsistent (beyond what the structured schema catches)."""


class StoreError(ObesityError):
    """A store (MLflow's, Optuna's) cannot be opened: named with its location and the cause."""


class RegistryError(ObesityError):
    """Unknown model, version or alias, or an alias move the rules refuse."""


class ModelRefused(RegistryError):
    """A registered version the framework will not load: not a model it produced and verified
    (e.g. a pickle, or skops holding types nobody reviewed)."""
