"""ApiError: a refusal in Finesse's words, raised by handlers and rendered as <ApiErrors>."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Final

MISMATCH: Final = "The user specified in the authentication credentials and the uri don't match"
NOT_MEMBER: Final = "The user specified in the authentication credentials is not on the team"


class ApiError(Exception):
    """One <ApiError> and the HTTP status it is sent with."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        data: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_type}: {message} ({data})")
        self.status = status
        self.error_type = error_type
        self.message = message
        self.data = data
        self.headers = dict(headers or {})


def unauthorized(user_id: str) -> ApiError:
    """Not authenticated, wrong password, or the wrong role for the call."""
    return ApiError(401, "Authorization Failure", "UNAUTHORIZED", user_id)


def invalid_user(user_id: str) -> ApiError:
    """Authenticated, but acting on another user (or a team one does not supervise)."""
    return ApiError(401, "Invalid Authorization User Specified", MISMATCH, user_id)


def invalid_team(user_id: str) -> ApiError:
    """Authenticated, but asking for another team's TeamResource."""
    return ApiError(401, "Invalid Authorization", NOT_MEMBER, user_id)


def not_found(what: str, object_id: str) -> ApiError:
    return ApiError(404, "Not Found", f"{what} not found", object_id)


def missing(parameter: str) -> ApiError:
    return ApiError(400, "Parameter Missing", f"The {parameter} parameter is missing", parameter)


def invalid_input(parameter: str) -> ApiError:
    return ApiError(400, "Invalid Input", f"The {parameter} parameter is invalid", parameter)


def malformed(detail: str) -> ApiError:
    return ApiError(400, "Bad Request", "The request body is not well-formed XML", detail)


def duplicate(parameter: str) -> ApiError:
    return ApiError(400, "Finesse API Error", "Database constraint violation", parameter)


def for_status(status: int) -> ApiError:
    """The error an injected `status` fault answers with."""
    if status == 503:
        return ApiError(503, "Service Unavailable", "SERVER_OUT_OF_SERVICE")
    if status == 500:
        return ApiError(500, "Internal Server Error", "RUNTIME_EXCEPTION")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return ApiError(status, phrase, phrase.upper().replace(" ", "_"))
