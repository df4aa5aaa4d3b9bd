"""The one error type a user sees as a single line (entry points print it and exit 1)."""


class UserError(Exception):
    """Bad input from the user or the data: the message names the thing and what to do."""
