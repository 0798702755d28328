"""The JSON error shape every OpsSeer HTTP API returns: {"error": {"code", "message", "field"?}}."""

from fastapi.responses import JSONResponse


def error_response(status_code: int, code: str, message: str, *, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    error = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return JSONResponse({"error": error}, status_code=status_code, headers=headers)
