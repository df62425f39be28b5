#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox>=2025.10.14"]
# ///
"""Task runner: ``nox -l`` lists the sessions, ``nox -s tests`` runs one.

Every session installs the README's install (``requirements.txt``, pinned by ``requirements.lock``).
``nox`` alone runs the default sessions: lint and tests.
"""

from __future__ import annotations

import nox

nox.needs_version = ">=2025.10.14"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"  # requirements.lock is compiled for CPython 3.11


def _install(session: nox.Session, *extra: str) -> None:
    session.install("-r", "requirements.txt", *extra)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (``nox -s tests -- -m slow`` for the end-to-end tests)."""
    _install(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff, the import layers (import-linter) and mypy."""
    _install(session, "ruff", "mypy")
    session.run("ruff", "check", ".")
    session.run("lint-imports")
    session.run("mypy")


@nox.session(python=PYTHON, default=False)
def book(session: nox.Session) -> None:
    """The main job: artefacts, the book (_build/html) and the PDF report (``camseg build``)."""
    _install(session)
    session.run("camseg", "build", *session.posargs)


@nox.session(python=PYTHON, default=False)
def build(session: nox.Session) -> None:
    """The sdist and the wheel, in dist/."""
    session.install("build")
    session.run("python", "-m", "build", *session.posargs)


if __name__ == "__main__":
    nox.main()
