"""The one exception type for errors a user can cause."""


class CalobenchError(Exception):
    """A user error: bad file, wrong shape, unknown name, invalid value.

    The message is one line naming the file (or name), the key and what was
    expected versus what was found. The CLI prints it and exits with status 2.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
