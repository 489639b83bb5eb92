"""The one exception type for user errors.

Library code raises :class:`DeblurGANError` with a one-line message that names the file or the
parameter at fault and says how to fix it; the scripts print that line and exit non-zero instead of
showing a traceback. A message about a parameter names it as Python does (``batch_size=0: ...``)
and passes ``parameter="batch_size"``; :func:`deblurgan.cli.main_guard` then shows the command-line
flag instead (``--batch_size 0: ...``), so the library never has to know its flags. Other
parameters a fix names are written the same way and listed in ``mentions`` (``skip_debian=True``
becomes ``--skip_debian``).
"""

import numbers


class DeblurGANError(Exception):
    """A problem with the user's input (file, folder, parameter) that the user can fix.

    Args:
        message: one line naming the file or parameter and the fix.
        parameter: the parameter the message is about, written ``parameter=value`` in it, or None.
        mentions: other parameters the message names as ``name=value`` (in the fix it suggests).
    """

    def __init__(self, message, parameter=None, mentions=()):
        super().__init__(message)
        self.parameter = parameter
        self.mentions = tuple(mentions)


def first_of(paths):
    """How a message names several files: the first, and how many more (``a.png and 3 more``)."""
    return f"{paths[0]} and {len(paths) - 1} more" if len(paths) > 1 else f"{paths[0]}"


def shown_value(value):
    """How a message shows an option's value: its repr, or ``default`` for None (an unset option)."""
    return "default" if value is None else repr(value)


MAX_SEED = 2**32 - 1  # NumPy's and Keras' seeds are unsigned 32-bit


def check_seed(seed, parameter="seed"):
    """``seed`` as an int; one line unless it is a whole number (NumPy's too) from 0 to ``MAX_SEED``."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED:
        return int(seed)
    raise DeblurGANError(f"{parameter}={seed!r}: use a whole number from 0 to {MAX_SEED}", parameter)
