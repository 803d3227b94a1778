"""Exceptions raised for bad user input. The CLI turns them into one-line messages."""


class SemrecError(Exception):
    """Base class: an error the user can fix, with a message that says how."""


class DataError(SemrecError):
    """A data file or data set is missing, malformed or inconsistent.

    The message names the file, the line or row when there is one, and what was expected.
    """


class ConfigError(SemrecError):
    """An experiment config or model hyperparameter is invalid."""


class EncoderError(SemrecError):
    """An item encoder cannot be loaded, or item embeddings (computed or brought by the user)
    are missing, malformed or do not match the catalogue. The message names the model or file.
    """


class ModelError(SemrecError):
    """A saved model is missing or corrupt, or a model was asked something it cannot answer."""


class UnknownUserError(ModelError, KeyError):
    """A query named a user the model has never seen."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
