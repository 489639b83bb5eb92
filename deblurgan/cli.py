"""What every script shares: user errors become one line on stderr and exit code 2."""

import functools
import logging
import sys

from deblurgan.errors import DeblurGANError


def main_guard(command):
    """Wraps a click command's callback: DeblurGANError -> ``error: ...`` on stderr, exit 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
        try:
            return command(*args, **kwargs)
        except DeblurGANError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper
