"""The ``posekit`` command line. Each subcommand is a thin call into the library
(:mod:`posekit.cli.commands`); the parser is in :mod:`posekit.cli.parser`.

Heavy modules are imported inside the subcommand that needs them, so that
``posekit --help`` stays instant.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from posekit.cli.commands import COMMANDS, CliError, _say
from posekit.cli.parser import build_parser

__all__ = ["main"]

log = logging.getLogger("posekit")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``posekit`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from posekit import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.workspace is None:
        args.workspace = os.environ.get("POSEKIT_WORKSPACE") or None
    if args.database_url is None:
        args.database_url = os.environ.get("POSEKIT_DATABASE_URL") or None
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except (CliError, ValueError, KeyError, FileNotFoundError, RuntimeError, OSError) as exc:
        if args.verbose:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        _say(f"posekit {args.command}: error: {in_cli_words(str(message))}")
        return 2


#: Library messages name Python parameters; on the command line they are flags.
_CLI_WORDS = (
    ("pass images_from=<the COCO file whose 'images' those ids refer to>",
     "give --images-from COCO.json (the COCO file whose 'images' those ids refer to)"),
    ("missing_media='register' (or copy_media=False)", "--missing-media register"),
    ("missing_media='register'", "--missing-media register"),
    ("pass image_root=", "give --image-root DIR"),
    ("(skeleton=...)", "(--template FILE)"),
    ("images_from=", "--images-from "),
    ("image_root=", "--image-root "),
)  # fmt: skip


def in_cli_words(message: str) -> str:
    """A library message with Python parameter names replaced by the CLI flags."""
    for python, flag in _CLI_WORDS:
        message = message.replace(python, flag)
    return message
