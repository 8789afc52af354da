"""``python -m criticlab.serve [OPTIONS]``: ``criticlab serve`` on its own (the same options,
errors as one line with exit code 2)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    import logging
    import os

    import click
    import typer

    from criticlab.cli.common import EXIT_INPUT, EXIT_MODEL, error_line
    from criticlab.cli.serve import serve
    from criticlab.errors import ConfigError, CriticlabError, InputError

    logging.basicConfig(level=os.environ.get("CRITICLAB_LOG", "WARNING").upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(serve)
    try:
        rc = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except (InputError, ConfigError) as e:
        error_line(e)
        sys.exit(EXIT_INPUT)
    except CriticlabError as e:
        error_line(e)
        sys.exit(EXIT_MODEL)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
