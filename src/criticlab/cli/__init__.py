"""The ``criticlab`` command, one module per command group: ``critique.py``, ``jobs.py``
(eval, refine, select), ``label.py``, ``train.py``, and ``app.py``, which puts them together
(with report, models and doctor) and holds the entry point :func:`main`. ``common.py`` holds
the consoles, option types and exit codes; ``tables.py`` the terminal rendering."""

from criticlab.cli.app import app, main

__all__ = ["app", "main"]
