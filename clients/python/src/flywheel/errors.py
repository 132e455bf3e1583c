"""Errors, mirroring the API's error body ``{"error": {"code", "message", "field", "line"?}}``."""

from typing import Any, Optional

import httpx

__all__ = ["FlywheelError", "TransportError"]


class FlywheelError(Exception):
    """A request the server refused or could not carry out.

    ``status`` is the HTTP status (``0`` when no answer came back at all), ``code`` the
    API's stable error code (``invalid``, ``not_found``, ``lease_lost``, ``reviewer_held``,
    …), ``field`` the request field at fault as a path (``items[3].prediction.scores.spam``)
    when the server named one, ``line`` the line of an imported file at fault (from 1).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: Optional[str] = None,
        body: Any = None,
        *,
        line: Optional[int] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.line = line
        self.body = body

    @classmethod
    def from_response(cls, response: httpx.Response) -> "FlywheelError":
        """The error a non-2xx response stands for (its JSON error body when it has one)."""
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            return cls(
                response.status_code,
                str(err.get("code", "error")),
                str(err.get("message", "")),
                err.get("field"),
                body,
                line=err.get("line"),
            )
        text = response.text[:500] if body is None else str(body)[:500]
        return cls(response.status_code, f"http_{response.status_code}", text, None, body)

    @property
    def retryable(self) -> bool:
        """Whether sending the same idempotent request again may succeed."""
        return self.status == 0 or self.status == 429 or self.status >= 500


class TransportError(FlywheelError):
    """No answer: the connection failed or timed out (``status`` 0, ``code`` ``transport``)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(0, "transport", f"{type(cause).__name__}: {cause}")
        self.__cause__ = cause
