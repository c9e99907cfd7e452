"""Domain errors: the web layer maps them to HTTP statuses, the CLI to messages."""


class DomainError(Exception):
    """Base class; `code` is the machine-readable error code."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class NotFound(DomainError):
    code, status = "not_found", 404


class Conflict(DomainError):
    code, status = "conflict", 409


class Invalid(DomainError):
    code, status = "invalid", 422


class Forbidden(DomainError):
    code, status = "forbidden", 403
