"""Errors a user can cause: caught at the edge (cli.main) and said in one line."""


class LitError(Exception):
    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
