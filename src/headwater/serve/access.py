"""Who is asking, and what they may see: API keys → roles → grants, masks and row policies.

A key is `hw_` and 43 random URL-safe characters; the catalog keeps its SHA-256 only (a key
is high-entropy, so a fast hash is as safe as a slow one, and a lookup is one dict probe). A
request gives it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from headwater.contracts.policies import OPEN, Policies, Role
from headwater.govern.masking import arrow_family, project_salt, sight
from headwater.govern.pii import Tag, project_tags
from headwater.project import Project
from headwater.serve.errors import ApiError
from headwater.serve.query import Columns
from headwater.zones.catalog import Catalog

KEY_PREFIX = "hw_"
_KEYS_TTL = 2.0  # seconds a server trusts its copy of the key hashes (a revoked key: ≤ 2 s)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """An authenticated request's key name (None: anonymous) and role."""

    key: str | None
    role_name: str
    role: Role


class Access:
    """The project's policies and the catalog's keys, as the data API enforces them."""

    def __init__(self, project: Project, catalog: Catalog):
        self.project, self.catalog = project, catalog
        self.policies: Policies = project.policies or OPEN
        self.open = project.policies is None
        self._keys: dict[str, tuple[str, str]] = {}
        self._keys_at = -_KEYS_TTL
        self._lock = threading.Lock()
        self._salt: str | None = None
        self._traced: dict[str, dict[str, Tag]] = {}

    def caller(self, key: str | None) -> Caller:
        """The caller a key (or no key) stands for.

        Raises:
            ApiError(401): no key where one is needed, or a key that is not (or no more) one.
        """
        if not key:
            if self.policies.anonymous is None:
                raise ApiError(
                    401,
                    "an API key is needed",
                    hint="send `Authorization: Bearer <key>` (headwater keys create NAME --role R)",
                )
            name = self.policies.anonymous
            return Caller(None, name, self.policies.roles[name])
        found = self._known().get(key_hash(key))
        if found is None:
            raise ApiError(401, "the API key is not valid (unknown or revoked)")
        key_name, role_name = found
        role = self.policies.roles.get(role_name)
        if role is None:  # its role left policies.yml: the key grants nothing
            raise ApiError(403, f"the key's role {role_name!r} is not in policies.yml")
        return Caller(key_name, role_name, role)

    def view(
        self, caller: Caller, model: str, schema: pa.Schema
    ) -> tuple[Columns, exp.Expr | None]:
        """The columns `caller` sees of `model` (masked ones as text, restricted ones left
        out) and the row policy.

        Raises:
            ApiError(403): the role has no grant on the model.
        """
        if not caller.role.granted(model):
            raise ApiError(
                403,
                f"role {caller.role_name!r} may not read {model}",
                hint="a grant in policies.yml gives it (roles.<role>.grants)",
            )
        names = schema.names
        seen = sight(self.policies, caller.role, model, names, self._tags(model, names))
        types = {
            f.name: (pa.string() if f.name in seen.masks else f.type)
            for f in schema
            if f.name not in seen.denied
        }
        kinds = {f.name: arrow_family(f.type) for f in schema if f.name in seen.masks}
        return Columns(types, seen.masks, self.salt(), kinds), seen.rows

    def salt(self) -> str:
        if self._salt is None:
            self._salt = project_salt(self.project)
        return self._salt

    def _tags(self, model: str, columns: list[str]) -> dict[str, Tag]:
        """The PII tags of a model's columns, traced through lineage once per model."""
        with self._lock:
            if model not in self._traced:
                self._traced[model] = project_tags(self.project, [model]).of(model, columns)
            return self._traced[model]

    def _known(self) -> dict[str, tuple[str, str]]:
        with self._lock:
            if time.monotonic() - self._keys_at >= _KEYS_TTL:
                self._keys = self.catalog.key_hashes()
                self._keys_at = time.monotonic()
            return self._keys
