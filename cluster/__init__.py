"""Cluster: settings, storage paths, Ray start-up and resource shapes, job entry points, the CLI."""

from cluster.errors import ConfigError, EngramError, InvalidIdError, UnknownComponentError
from cluster.paths import tenant_path, validate_tenant_id, validate_user_id
from cluster.settings import Settings, get_settings, load_settings

__all__ = [
    "ConfigError",
    "EngramError",
    "InvalidIdError",
    "Settings",
    "UnknownComponentError",
    "get_settings",
    "load_settings",
    "tenant_path",
    "validate_tenant_id",
    "validate_user_id",
]
