"""The one exception type for user errors.

Library code raises :class:`DeblurGANError` with a one-line message that names the file (or
option) at fault and says how to fix it; the scripts print that line and exit non-zero instead of
showing a traceback.
"""


class DeblurGANError(Exception):
    """A problem with the user's input (file, folder, option) that the user can fix."""
