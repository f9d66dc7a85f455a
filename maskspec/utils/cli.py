"""How every command line ends: one clear error line and an exit status (0 ok, 1 failed, 2 bad options)."""
from __future__ import annotations

import logging
import sys
from typing import Callable, Optional, Sequence


class UsageError(ValueError):
    """A bad option value found after parsing: reported with the usage, exit status 2, as argparse does."""


def run_main(prog: str, build_parser: Callable, run: Callable, argv: Optional[Sequence[str]],
             log: Optional[logging.Logger] = None) -> int:
    """Parse ``argv`` with ``build_parser()`` and return ``run(args)``'s exit status.

    A ``UsageError`` goes to ``parser.error`` (usage, message, exit 2). Any other exception becomes one line
    ``<prog>: error: <message>`` on stderr and exit status 1; it also goes into the log files of the
    ``maskspec`` logger (train.log) without a second stderr line. With ``log`` (a command line whose messages
    are log lines), the error is logged there instead of printed.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as e:
        parser.error(str(e))
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear line and exit status 1
        if log is not None:
            log.error("%s", e)
            return 1
        print(f"{prog}: error: {e}", file=sys.stderr)
        for handler in logging.getLogger("maskspec").handlers:  # also into train.log, without a 2nd stderr line
            if isinstance(handler, logging.FileHandler):
                handler.handle(logging.makeLogRecord(dict(name=prog, levelno=logging.ERROR, levelname="ERROR",
                                                          msg=f"{type(e).__name__}: {e}")))
        return 1
