"""The HTTP transport to a team server (``HEADRACE_URL`` + ``HEADRACE_TOKEN``), shared by
the client mode of the interfaces (:mod:`headrace.client`) and remote tracking
(:mod:`headrace.tracking.remote`)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

from headrace.errors import HeadraceError

#: The PEM file of the authority that signed an https team server's certificate.
CA_BUNDLE = "HEADRACE_CA_BUNDLE"


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
            verify=_verification(),
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
            if _untrusted(exc):
                raise RemoteError(
                    f"the team server at {self.url} presented a certificate this client does "
                    f"not trust ({exc}); if a private certificate authority signed it, set "
                    f"{CA_BUNDLE}=/path/to/ca.pem (that authority's PEM certificate)"
                ) from exc
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


def _verification() -> ssl.SSLContext | bool:
    """How an https server's certificate is checked: against the system's authorities
    (certifi's), or only against the ``HEADRACE_CA_BUNDLE`` file when set."""
    bundle = os.environ.get(CA_BUNDLE, "").strip()
    if not bundle:
        return True
    try:
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise RemoteError(
            f"{CA_BUNDLE}={bundle} cannot be read as PEM certificates ({exc}); give the path "
            "of the PEM file of the certificate authority that signed the server's certificate"
        ) from exc


def _untrusted(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


__all__ = ["CA_BUNDLE", "Remote", "RemoteError"]
