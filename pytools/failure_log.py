"""`failures --log FILE`: the original pipeline's failures.log, rebuilt from pipeline_failures.

FILE gets one line per failure, the line each run also writes to the server log
(pipeline.failure_log_line, starting `pipeline_failure run_id=N failure_id=M `), in run order.
Safe to repeat, from a cron line or after every `run-now`: a failure whose line FILE holds
already, whole, is never written again, and an exclusive lock on FILE keeps two writers at once
apart. Whole lines, not failure ids: two databases may keep one FILE (their ids are the same
numbers), and a look-alike line of someone else's cannot keep a failure out. Lines that are not
ours are left alone and ignored.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg

from pytools.db import Target, using
from pytools.errors import UserError
from pytools.migrations import require_migrated

_OURS = re.compile(rb"^pipeline_failure run_id=(\d+) failure_id=(\d+) ")
# Streamed: years of retained failures need not fit in memory at once.
_BATCH = 5000
# Longer than any line of ours (texts cut at 1,200 characters, 6 bytes at most each once
# escaped): FILE is read in pieces of this size, so a huge line of someone else's is no burden.
_LONGEST = 64 * 1024
# How long a writer waits for another's lock on FILE before it gives up. Anyone who may read
# FILE may lock it: writers waiting for ever would pile up, a cron line an hour, each holding a
# database connection. A minute is far more than a writer needs.
LOCK_WAIT = 60.0


@dataclass(frozen=True)
class Appended:
    lines: int  # failures written now
    runs: int  # runs they belong to
    already: int  # retained failures FILE held already


def _digest(line: bytes) -> bytes:
    return hashlib.blake2b(line, digest_size=16).digest()


def _logged_lines(handle: IO[bytes], oldest: int) -> set[bytes]:
    """Digests of FILE's complete lines of ours (a line cut by a crash counts as missing), from
    failure id `oldest` on: lines of purged runs can never be asked for again."""
    handle.seek(0)
    digests: set[bytes] = set()
    at_start = True  # the piece read starts a line
    while piece := handle.readline(_LONGEST):
        whole = at_start and piece.endswith(b"\n")
        at_start = piece.endswith(b"\n")
        match = _OURS.match(piece) if whole else None
        if match and int(match[2]) >= oldest:
            digests.add(_digest(piece))
    return digests


def _ends_mid_line(handle: IO[bytes]) -> bool:
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return False
    handle.seek(size - 1)
    return handle.read(1) != b"\n"


def _open_locked(path: Path) -> IO[bytes]:
    try:
        handle = path.open("a+b")
    except IsADirectoryError:
        raise UserError(f"cannot write the failures log {path}: it is a directory; name a file") from None
    except OSError as exc:
        if path.exists() and not path.is_file():
            raise _not_a_file(path) from None
        raise UserError(
            f"cannot write the failures log {path}: {exc.strerror}; name a file this user may write"
        ) from None
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # a device: /dev/full reads endless zeros
        handle.close()
        raise _not_a_file(path)
    _lock(handle, path)  # held until the handle closes
    return handle


def _lock(handle: IO[bytes], path: Path) -> None:
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise UserError(
                    f"the failures log {path} is locked by another process (another failures --log?) for "
                    f"over {LOCK_WAIT:.0f} s: see who holds it with `fuser {path}`, then try again"
                ) from None
            time.sleep(0.1)


def _not_a_file(path: Path) -> UserError:
    return UserError(
        f"cannot write the failures log {path}: it is not a regular file (a FIFO, a device); name a file"
    )


def append_failure_log(target: Target, path: Path) -> Appended:
    """Append to `path` the lines of every retained failure it lacks; what was written."""
    with using(target) as conn:
        require_migrated(conn)  # before FILE is created
        row = conn.execute("SELECT min(failure_id) AS oldest FROM pipeline.pipeline_failures").fetchone()
        with _open_locked(path) as handle:
            if row is None or row["oldest"] is None:
                return Appended(0, 0, 0)
            logged = _logged_lines(handle, int(row["oldest"]))
            try:
                return _append_missing(conn, handle, logged, _ends_mid_line(handle))
            except OSError as exc:  # disk full, say: what was written stays; the next call completes it
                raise UserError(f"writing the failures log {path} failed: {exc.strerror}") from None


def _append_missing(
    conn: psycopg.Connection[dict[str, Any]], handle: IO[bytes], logged: set[bytes], cut: bool
) -> Appended:
    lines = already = 0
    runs: set[int] = set()
    with conn.transaction(), conn.cursor(name="failure_log") as cursor:
        cursor.itersize = _BATCH
        cursor.execute(
            "SELECT f.run_id, f.failure_id, pipeline.failure_log_line(to_jsonb(f)) AS line "
            "FROM pipeline.pipeline_failures AS f ORDER BY f.run_id, f.failure_id"
        )
        for failure in cursor:
            line = failure["line"].encode("utf-8") + b"\n"
            if _digest(line) in logged:
                already += 1
                continue
            if cut:  # a line cut short by a crash ends here; ours start on their own
                handle.write(b"\n")
                cut = False
            handle.write(line)
            lines += 1
            runs.add(failure["run_id"])
    handle.flush()
    os.fsync(handle.fileno())
    return Appended(lines, len(runs), already)


def describe(appended: Appended, path: Path) -> str:
    if appended.lines == 0:
        return f"{path}: nothing to add ({appended.already} retained failures are there already)"
    return (
        f"appended {appended.lines} failures of {appended.runs} runs to {path} "
        f"({appended.already} retained failures were there already)"
    )
