"""Every environment variable Engram reads, typed and defaulted. No other module reads os.environ."""

from __future__ import annotations

import os

# Path of a YAML settings file. Unset: built-in defaults (embedded local mode).
ENGRAM_CONFIG: str | None = os.environ.get("ENGRAM_CONFIG") or None

# Storage root (local folder or object-store URI); overrides `storage_root` in the YAML file.
ENGRAM_STORAGE_ROOT: str | None = os.environ.get("ENGRAM_STORAGE_ROOT") or None

# Address of a running Ray cluster ("auto", "ray://host:10001"); overrides `ray.address`.
ENGRAM_RAY_ADDRESS: str | None = os.environ.get("ENGRAM_RAY_ADDRESS") or os.environ.get("RAY_ADDRESS") or None

# Logical CPUs to declare when Engram starts a local Ray; overrides `ray.num_cpus`.
ENGRAM_RAY_NUM_CPUS: int | None = (
    int(os.environ["ENGRAM_RAY_NUM_CPUS"]) if os.environ.get("ENGRAM_RAY_NUM_CPUS") else None
)

# Log level of Engram's own loggers.
ENGRAM_LOG_LEVEL: str = os.environ.get("ENGRAM_LOG_LEVEL", "INFO")

# The admin API key (for /admin routes and /metrics); overrides `api.admin_key`.
ENGRAM_ADMIN_KEY: str | None = os.environ.get("ENGRAM_ADMIN_KEY") or None

# SQLAlchemy URL of the control-plane database; overrides `api.database_url`.
ENGRAM_DATABASE_URL: str | None = os.environ.get("ENGRAM_DATABASE_URL") or None

# Base64 of the 32-byte master key that wraps every tenant's data key; overrides `security.master_key`.
# Set it from a secret store; unset on a local storage root, a key file is generated there once.
ENGRAM_MASTER_KEY: str | None = os.environ.get("ENGRAM_MASTER_KEY") or None

# Folder for derived files a node can rebuild (the embedders' exported ONNX graphs).
ENGRAM_CACHE_DIR: str = os.environ.get("ENGRAM_CACHE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "engram"
)
