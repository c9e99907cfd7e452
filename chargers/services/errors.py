"""Domain errors: a code from chargers.outcomes with its parameters. The web maps the
class to an HTTP status and renders the code in the page's language; the API answers the
contract's `{"error": {"code": <family>, "message": <English text of the code>}}`; the
command line prints the English text."""

from __future__ import annotations


class DomainError(Exception):
    """Base class. `family` is the API's error code (`invalid`, `not_found`, …);
    `code` is the outcome code of chargers.outcomes; `params` fill its text."""

    family = "error"
    status = 400

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def message(self) -> str:
        from ..outcomes import english

        return english(self.code, self.params)


class NotFound(DomainError):
    family, status = "not_found", 404


class Conflict(DomainError):
    family, status = "conflict", 409


class Invalid(DomainError):
    family, status = "invalid", 422


class Forbidden(DomainError):
    family, status = "forbidden", 403


class BadParameter(DomainError):
    """A request the API cannot read: e.g. a query parameter it does not know."""

    family, status = "bad_request", 400


class Unauthorized(DomainError):
    """No Bearer token, or a wrong or revoked one (the contract's `unauthorized`)."""

    family, status = "unauthorized", 401
