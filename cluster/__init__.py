"""The foundation every other package stands on; it imports none of them.

- settings: one strict, typed model loaded from YAML (``settings``), every environment variable in
  ``envs``;
- errors: the exception hierarchy, with context fields, that survives pickling (``errors``);
- ids and paths: validated ids, and every storage path built from them (``paths``);
- records: the tables' Arrow schemas and their vocabulary, memory kinds among it (``schemas``);
- crypto: envelope encryption at rest (``crypto``, used as a namespace);
- registries of swappable parts (``registry``);
- Ray: starting or joining it, and the resources workloads ask for (``runtime``).
"""

from cluster import crypto, envs, schemas
from cluster.errors import (
    ConfigError,
    ConflictError,
    DecryptionError,
    EngramError,
    InvalidIdError,
    InvalidRequestError,
    KeyDestroyedError,
    NotFoundError,
    UnknownComponentError,
)
from cluster.paths import (
    NAME,
    TENANT_ID,
    USER_ID,
    model_path,
    tenant_path,
    tenant_root,
    validate_name,
    validate_tenant_id,
    validate_user_id,
)
from cluster.registry import Registry
from cluster.runtime import (
    apply_ray_env,
    cluster_gpus,
    embedding_actor_resources,
    embedding_actors,
    embedding_device,
    ensure_ray,
)
from cluster.schemas import MEMORY_KINDS, SLOTTED_KINDS, MemoryKind, check_time
from cluster.settings import (
    BrokerSettings,
    EmbeddingSettings,
    IngestSettings,
    PiiKind,
    QuotaSettings,
    RetrievalSettings,
    Settings,
    TenantLimits,
    get_settings,
    load_settings,
)

__all__ = [
    "MEMORY_KINDS",
    "NAME",
    "SLOTTED_KINDS",
    "TENANT_ID",
    "USER_ID",
    "BrokerSettings",
    "ConfigError",
    "ConflictError",
    "DecryptionError",
    "EmbeddingSettings",
    "EngramError",
    "IngestSettings",
    "InvalidIdError",
    "InvalidRequestError",
    "KeyDestroyedError",
    "MemoryKind",
    "NotFoundError",
    "PiiKind",
    "QuotaSettings",
    "Registry",
    "RetrievalSettings",
    "Settings",
    "TenantLimits",
    "UnknownComponentError",
    "apply_ray_env",
    "check_time",
    "cluster_gpus",
    "crypto",
    "embedding_actor_resources",
    "embedding_actors",
    "embedding_device",
    "ensure_ray",
    "envs",
    "get_settings",
    "load_settings",
    "model_path",
    "schemas",
    "tenant_path",
    "tenant_root",
    "validate_name",
    "validate_tenant_id",
    "validate_user_id",
]
