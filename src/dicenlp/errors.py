"""Errors a user can fix, reported as one message instead of a traceback.

Every expected failure (a malformed data file, a missing file, a config value out of range, a precision the
device cannot run, a run folder that holds another run) raises a ``UserError``: *what* is wrong, *where*
(``file:line`` or the config key) and what was *expected*. The command-line edge (``train.py``) turns it into
one line on stderr and exit code 2 (``exit_on_user_error``); anything else is a bug and keeps its traceback
(exit code 1, Hydra's report). Library code raises and never exits, so notebooks can catch these.

The data readers' own error classes (``ColumnFormatError``, ``SquadFormatError`` ...) derive from
``DataError``; every class here also derives from the built-in exception a caller would expect
(``ValueError``, ``FileNotFoundError``, ``FloatingPointError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TypeVar

T = TypeVar("T")

#: The exit code of a run stopped by a ``UserError`` (1 stays Hydra's and Python's code for a crash).
USER_ERROR_EXIT_CODE = 2


class UserError(Exception):
    """An expected error the user can fix.

    what: what is wrong (``"-1.0 is not a valid learning rate"``).
    where: the file and line (``data/x/train.txt:12``) or the config key (``trainer.lr``), when known.
    expected: what would have been accepted (``"a number >= 0"``).
    """

    def __init__(self, what: str, *, where: str | None = None, expected: str | None = None) -> None:
        self.what, self.where, self.expected = what, where, expected
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}; expected {self.expected}" if self.expected else text

    def __str__(self) -> str:
        return self.message


class DataError(UserError, ValueError):
    """A data file (or a Hub split) does not hold what the task needs."""


class MissingDataError(UserError, FileNotFoundError):
    """A data file or folder is not where the config says."""


class ConfigError(UserError, ValueError):
    """A config value is unknown, of the wrong type or out of range (``where`` is the key)."""


class DeviceError(UserError):
    """The machine cannot run what the config asks (e.g. fp16 without a GPU)."""


class RunDirError(UserError):
    """The run folder holds another run, or nothing to resume where a resume was demanded."""


class NonFiniteLossError(UserError, FloatingPointError):
    """The training loss became NaN or infinite (a learning rate or precision problem, not a crash)."""


class OtherRankFailed(UserError):
    """This process stops because another process of the same distributed run failed (message: which, why)."""


def exit_on_user_error(fn: Callable[..., T], *args: Any, in_sweep: bool = False, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``; a ``UserError`` becomes ``error: <message>`` on stderr and exit code 2.

    In a distributed run every process receives the error (``dicenlp.distributed``); only one prints it (the
    process where it happened), the others exit quietly. ``in_sweep`` (a Hydra multirun job): the error is printed
    and raised instead of exiting, so that Hydra records the job as failed, runs the other jobs and reports the
    failure at the end (exit code 1)."""
    try:
        return fn(*args, **kwargs)
    except UserError as err:
        if not getattr(err, "quiet", False):
            print(f"error: {err.message}", file=sys.stderr, flush=True)
        if in_sweep:
            raise
        sys.exit(USER_ERROR_EXIT_CODE)


__all__ = ["ConfigError", "DataError", "DeviceError", "MissingDataError", "NonFiniteLossError", "OtherRankFailed",
           "RunDirError", "USER_ERROR_EXIT_CODE", "UserError", "exit_on_user_error"]
