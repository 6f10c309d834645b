"""The control plane: every SQL table of the platform, and the long-lived actors that decide over them.

State is in SQL (SQLite by default, PostgreSQL on a cluster; schema by the alembic migrations in
``migrations/``, one engine per URL in ``db``): tenants and hashed API keys (``tenants``), quotas
and metered usage (``quotas``), the append-only audit log (``audit``), per-tenant data keys
(``keys``), tenants' models and adapter versions (``models``), fine-tune files and jobs
(``files``, ``jobs``), GPU workloads (``broker``); tenant deletion (``deletion``) reaches all of
them. The GPU broker and the fine-tuner run as named, detached actors that Ray restarts
(``control``); the broker's policy is ``broker_policy``, its training runner ``broker_runner``.
"""

from actors.audit import AuditEvent, AuditLog
from actors.broker import GPUBroker, Lease, broker_name, get_broker, replan, start_broker
from actors.broker_policy import TERMINAL
from actors.broker_runner import StepLoop, request_serving_gpus, run_training
from actors.control import FINE_TUNER, NAMESPACE, actor_name, control_actor_options, unwrap
from actors.db import schema_revision
from actors.deletion import DeletionReport, delete_tenant
from actors.files import FILE_ID, PURPOSE, FileStore, check_upload
from actors.jobs import (
    FINAL,
    JOB_ID,
    Hyperparameters,
    JobRequest,
    JobStatus,
    JobStore,
    check_request,
    migration_request,
)
from actors.keys import DataKeys
from actors.models import (
    Adapter,
    DeploymentAction,
    ModelRegistry,
    VersionState,
    model_name,
)
from actors.quotas import Metric, QuotaBook, QuotaExceededError
from actors.tenants import KeyScope, NewKey, TenantDirectory

__all__ = [
    "FILE_ID",
    "FINAL",
    "FINE_TUNER",
    "JOB_ID",
    "NAMESPACE",
    "PURPOSE",
    "TERMINAL",
    "Adapter",
    "AuditEvent",
    "AuditLog",
    "DataKeys",
    "DeletionReport",
    "DeploymentAction",
    "FileStore",
    "GPUBroker",
    "Hyperparameters",
    "JobRequest",
    "JobStatus",
    "JobStore",
    "KeyScope",
    "Lease",
    "Metric",
    "ModelRegistry",
    "NewKey",
    "QuotaBook",
    "QuotaExceededError",
    "StepLoop",
    "TenantDirectory",
    "VersionState",
    "actor_name",
    "broker_name",
    "check_request",
    "check_upload",
    "control_actor_options",
    "delete_tenant",
    "get_broker",
    "migration_request",
    "model_name",
    "replan",
    "request_serving_gpus",
    "run_training",
    "schema_revision",
    "start_broker",
    "unwrap",
]
