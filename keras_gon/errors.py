"""Errors raised by keras-gon for bad input (shape, dtype, value range, missing file...)."""


class InputError(ValueError):
    """Bad input given by the user: the message names the problem in one line.

    The command line turns it into one error line and exit status 2.
    """


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss (the model keeps its last finite weights).

    The command line turns it into one error line and exit status 2.
    """
