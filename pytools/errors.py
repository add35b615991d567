"""User-facing errors: one line saying what is wrong and how to fix it, and an exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    RUN_FAILED = 1
    USAGE = 2
    CONNECTION = 3
    NOT_MIGRATED = 4
    NO_PG_CRON = 5
    DATABASE_ERROR = 6


class UserError(Exception):
    """An error the user can fix; the CLI prints its message alone, without a traceback."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
