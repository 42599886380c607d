"""The one exception hierarchy of edgekit.

    EdgekitError                 base; `exit_code` is what the CLI exits with
    ├── UsageError               bad flags/config values (exit 2)
    │   ├── ConfigError          a recipe/profile file with an unknown key or bad value (exit 2)
    │   ├── FieldError           one config field has a bad value; names the field (exit 2)
    │   └── ReportError          a report.json that is not a valid edgekit report (exit 2)
    ├── DataError                a dataset cannot be found, fetched or parsed (exit 2)
    ├── ModelError               a user model cannot be loaded safely (exit 2)
    ├── OutputExistsError        the output exists and --force was not given (exit 2)
    ├── ExportError              a conversion failed (exit 1)
    ├── VerificationError        an export disagrees with its parent beyond tolerance (exit 1)
    ├── TargetError              a device profile cannot run here (exit 1)
    └── SearchError              no candidate met the accuracy/latency budget (exit 1)

Every message is a single line that names the file, field or flag at fault.
"""

from __future__ import annotations


class EdgekitError(Exception):
    """Base class of every error edgekit raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class UsageError(EdgekitError):
    """A flag or configuration value is invalid."""

    exit_code = 2


class ConfigError(UsageError):
    """A recipe or device-profile file has an unknown key or a bad value."""


class FieldError(UsageError):
    """One config field has a bad value: ``field`` names it (its flag when it has one), ``problem`` says why."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field} {problem}" if problem.startswith("must") else f"{field}: {problem}")


class ReportError(UsageError):
    """A report.json is malformed; the message names the file and the field."""


class DataError(EdgekitError):
    """A dataset cannot be found, downloaded, verified or parsed."""

    exit_code = 2


class ModelError(EdgekitError):
    """A user-supplied model cannot be loaded (or not safely)."""

    exit_code = 2


class OutputExistsError(EdgekitError):
    """The output path exists and overwriting was not allowed."""

    exit_code = 2


class ExportError(EdgekitError):
    """A model conversion failed."""


class VerificationError(EdgekitError):
    """An exported model disagrees with its parent beyond tolerance."""


class TargetError(EdgekitError):
    """A device profile cannot be used from here."""


class SearchError(EdgekitError):
    """No compression candidate met the requested budget."""
