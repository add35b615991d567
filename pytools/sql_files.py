"""Where the package's SQL lives: inside the installed wheel, or at the top of a checkout."""

from __future__ import annotations

from pathlib import Path


def sql_root() -> Path:
    installed = Path(__file__).resolve().parent / "sql"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "sql"


def migrations_dir() -> Path:
    return sql_root() / "migrations"


def routine_files() -> list[Path]:
    """Routine files in the order `migrate` applies them.

    PL/pgSQL bodies are resolved when called, not when created, so name order is safe as
    long as only PL/pgSQL routines call other routines (SQL-language bodies are checked at
    creation); it is also stable, which keeps every install identical.
    """
    return sorted((sql_root() / "procedures").glob("*.sql"))


def sample_file(name: str) -> Path:
    return sql_root() / "sample" / name
