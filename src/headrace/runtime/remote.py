"""The HTTP transport to a team server (``HEADRACE_URL`` + ``HEADRACE_TOKEN``), shared by
the client mode of the interfaces (:mod:`headrace.client`) and remote tracking
(:mod:`headrace.tracking.remote`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from headrace.errors import HeadraceError


class RemoteError(HeadraceError):
    """The team server refused a call or could not be reached: says which and why."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


class Remote:
    """A team server and the token to call it with."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        import httpx

        if not url.startswith(("http://", "https://")):
            raise RemoteError(f"HEADRACE_URL {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    @classmethod
    def from_environment(cls) -> Remote | None:
        """The server ``HEADRACE_URL`` names (with ``HEADRACE_TOKEN``), or None."""
        url = os.environ.get("HEADRACE_URL", "").strip()
        if not url:
            return None
        token = os.environ.get("HEADRACE_TOKEN", "").strip()
        if not token:
            raise RemoteError(
                "HEADRACE_URL is set but HEADRACE_TOKEN is not: issue one with "
                "`headrace tokens issue NAME` on the server's workspace"
            )
        return cls(url, token)

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        raw: bool = False,
        content: bytes | None = None,
        prefix: str = "/api/v1",
    ) -> Any:
        """``prefix`` + ``path``; the decoded JSON (or the response, ``raw``)."""
        import httpx

        try:
            answer = self._http.request(
                method,
                f"{prefix}{path}",
                json=json,
                content=content,
                params={k: v for k, v in (params or {}).items() if v is not None},
            )
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the team server at {self.url}: {exc}") from exc
        if answer.status_code >= 400:
            try:
                body = answer.json()
                message, code = str(body.get("message")), body.get("error_code")
            except ValueError:
                message, code = answer.text[:500], None
            raise RemoteError(
                f"the team server refused {method} {path} ({answer.status_code}): {message}",
                status=answer.status_code,
                code=code,
            )
        return answer if raw else answer.json()

    def pages(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a paged ``/api/v1`` list, fetched 1,000 at a time."""
        out: list[Any] = []
        token: str | None = "0"
        while token is not None:
            got = self.call(
                "GET", path, params={**(params or {}), "limit": 1000, "page_token": token}
            )
            out += got[key]
            token = got["next_page_token"]
        return out


__all__ = ["Remote", "RemoteError"]
