"""Every storage path is built here, from validated ids only.

The storage root is a local folder or an object-store URI (``s3://bucket/prefix``).
Ids are checked against strict patterns, so no id can contain a separator, ``..`` or
a quote, and no path built here can leave its tenant's folder.
"""

from __future__ import annotations

import re
from typing import Literal

from cluster.errors import InvalidIdError

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

TenantArea = Literal["lance", "files", "adapters", "checkpoints"]


def _check(pattern: re.Pattern[str], kind: str, value: object) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        raise InvalidIdError(
            f"invalid {kind} {value!r}: must match {pattern.pattern} and not contain '..'",
            param=kind,
            value=repr(value)[:80],
        )
    return value


def validate_tenant_id(value: object) -> str:
    """Lower-case letters, digits, '_' and '-', 1-63 characters."""
    return _check(TENANT_ID, "tenant_id", value)


def validate_user_id(value: object) -> str:
    """Letters, digits and ``._@+-``, 1-128 characters, starting with a letter or digit."""
    return _check(USER_ID, "user_id", value)


def validate_name(value: object, kind: str = "name") -> str:
    """A path component such as an adapter name, version or job id."""
    return _check(NAME, kind, value)


def _join(root: str, *parts: str) -> str:
    base = root.rstrip("/") or "/"
    return "/".join([base, *parts])


def tenant_root(root: str, tenant_id: str) -> str:
    """``<root>/tenants/<tenant>``: everything the tenant stores (removed whole when it is deleted)."""
    return _join(root, "tenants", validate_tenant_id(tenant_id))


def tenant_path(root: str, tenant_id: str, area: TenantArea, *names: str) -> str:
    """``<root>/tenants/<tenant>/<area>/<names...>``; every component validated."""
    validate_tenant_id(tenant_id)
    checked = [validate_name(n, "path component") for n in names]
    return _join(root, "tenants", tenant_id, area, *checked)


def model_path(root: str, base_model: str) -> str:
    """``<root>/models/<base>``: a base model's files."""
    return _join(root, "models", validate_name(base_model, "base_model"))
