"""Domain errors raised by services and mapped at the edge to a page, a flash or a JSON error."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every domain error. `code` is machine-readable; `fields` maps field -> problem."""

    status = 422
    code = "invalid"

    def __init__(self, message: str, fields: dict[str, str] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code


class ValidationError(DomainError):
    status = 422
    code = "validation_error"


class BadRequest(DomainError):
    """Malformed input: wrong JSON types, unparsable bodies."""

    status = 400
    code = "bad_request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Gone(DomainError):
    status = 410
    code = "gone"


class QuotaExceeded(DomainError):
    status = 422
    code = "quota_exceeded"


class Infeasible(DomainError):
    status = 422
    code = "infeasible"
