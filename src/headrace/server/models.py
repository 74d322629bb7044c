"""The request bodies of the ``/api/v1`` routes (pydantic models: FastAPI checks them and
publishes them in the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["viewer", "developer", "maintainer", "admin"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrincipalIn(_Strict):
    name: str = Field(
        min_length=1, max_length=200, description="A letter, then letters, digits, _ . @ -"
    )
    kind: Literal["person", "service"] = "person"
    role: Role = "viewer"
    namespace: str = Field("*", min_length=1, max_length=200)
    token: bool = Field(True, description="Issue a token now (shown once)")


class GrantIn(_Strict):
    role: Role
    namespace: str = Field("*", min_length=1, max_length=200)


class TokenIn(_Strict):
    expires_days: float | None = Field(None, gt=0, le=3650)
    description: str | None = Field(None, max_length=500)
