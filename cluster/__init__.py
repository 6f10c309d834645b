"""The foundation every other package stands on; it imports none of them.

- settings: one strict, typed model loaded from YAML (``settings``), every environment variable in
  ``envs``;
- errors: the exception hierarchy, with context fields, that survives pickling (``errors``);
- ids and keys: validated ids, and every storage key built from them (``paths``);
- the storage layer: every stored byte, on a local folder or an object store (``storage``);
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
    area_key,
    model_key,
    tenant_key,
    validate_name,
    validate_tenant_id,
    validate_user_id,
)
from cluster.registry import Registry
from cluster.runtime import (
    RAY_ENV,
    apply_ray_env,
    cluster_gpus,
    embedding_actor_resources,
    embedding_actors,
    embedding_device,
    ensure_ray,
    replica_gpus,
    wants_gpu,
)
from cluster.schemas import EXPORTED_TABLES, MEMORY_KINDS, SLOTTED_KINDS, MemoryKind, check_time
from cluster.settings import (
    BrokerSettings,
    EmbeddingSettings,
    IngestSettings,
    PiiKind,
    QuotaSettings,
    RetrievalSettings,
    Settings,
    StorageSettings,
    TenantLimits,
    get_settings,
    is_object_store,
    load_settings,
)
from cluster.storage import Entry, Storage

__all__ = [
    "EXPORTED_TABLES",
    "MEMORY_KINDS",
    "NAME",
    "RAY_ENV",
    "SLOTTED_KINDS",
    "TENANT_ID",
    "USER_ID",
    "BrokerSettings",
    "ConfigError",
    "ConflictError",
    "DecryptionError",
    "EmbeddingSettings",
    "EngramError",
    "Entry",
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
    "Storage",
    "StorageSettings",
    "TenantLimits",
    "UnknownComponentError",
    "apply_ray_env",
    "area_key",
    "check_time",
    "cluster_gpus",
    "crypto",
    "embedding_actor_resources",
    "embedding_actors",
    "embedding_device",
    "ensure_ray",
    "envs",
    "get_settings",
    "is_object_store",
    "load_settings",
    "model_key",
    "replica_gpus",
    "schemas",
    "tenant_key",
    "validate_name",
    "validate_tenant_id",
    "validate_user_id",
    "wants_gpu",
]
