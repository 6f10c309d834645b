"""Every storage key is built here, from validated ids only.

A key is a ``/``-separated path under the storage root (``cluster.storage`` turns it into a
location, local or on an object store). Ids are checked against strict patterns, so no id can
contain a separator, ``..`` or a quote, and no key built here can leave its tenant's folder.
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


def tenant_key(tenant_id: str) -> str:
    """``tenants/<tenant>``: everything the tenant stores (removed whole when it is deleted)."""
    return f"tenants/{validate_tenant_id(tenant_id)}"


def area_key(tenant_id: str, area: TenantArea, *names: str) -> str:
    """``tenants/<tenant>/<area>/<names...>``; every component validated."""
    checked = [validate_name(n, "path component") for n in names]
    return "/".join([tenant_key(tenant_id), area, *checked])


def model_key(base_model: str) -> str:
    """``models/<base>``: a base model's files."""
    return f"models/{validate_name(base_model, 'base_model')}"
