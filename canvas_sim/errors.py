"""The one exception the simulator raises for anything a strict Canvas would refuse."""

from __future__ import annotations


class SimAuthError(Exception):
    """A request the platform refuses.

    `error` is the OAuth 2 error code used when this surfaces from the token
    endpoint (RFC 6749 §5.2); `status` is the HTTP status the Flask layer uses.
    """

    def __init__(self, message: str, *, error: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.error = error
        self.status = status
