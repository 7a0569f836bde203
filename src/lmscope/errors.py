"""Errors a user can cause. The CLI turns these into one clear line and a non-zero exit."""


class LmscopeError(Exception):
    """A problem with the user's input (file, model, option value), reported without a traceback."""
