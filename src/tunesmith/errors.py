"""One exception type for bad input: the CLI turns it into a one-line message and exit code 1."""


class TunesmithError(Exception):
    """A problem the user can fix (bad file, bad config, missing checkpoint...).

    The message is a single line that says what is wrong and what to do.
    """


class UsageError(TunesmithError):
    """A command given the wrong arguments (like argparse's own errors): exit code 2."""

    exit_code = 2
