"""The fine-tuner: a control-plane actor that runs tenants' fine-tuning jobs through the GPU broker.

``submit`` checks a job request and records it; a thread per job then moves it along
(``actors.jobs``): files validated and split → queued at the broker (GPUs on a GPU cluster, a
CPU-only run elsewhere, the tenant's job quotas either way) → running the LoRA recipe on Ray
Train with checkpoints sealed by the tenant's key → evaluated against the base model → its adapter
registered as the model's next version, and deployed when it beats the base model and the
version served now on the validation loss.

When the broker takes the GPUs back, the recipe checkpoints and stops at its next checkpoint
boundary, the job is ``preempted`` and ``queued`` again, and the next admission resumes from that
checkpoint. The actor is named and detached and Ray restarts it; everything is in SQL and in the
tenant's checkpoint folder, so a restarted fine-tuner picks up every unfinished job where it was.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray
from ray.actor import ActorHandle

from actors import (
    FINAL,
    FINE_TUNER,
    NAMESPACE,
    TERMINAL,
    DataKeys,
    FileStore,
    JobRequest,
    JobStore,
    ModelRegistry,
    actor_name,
    check_request,
    control_actor_options,
    model_name,
    start_broker,
    unwrap,
)
from cluster import (
    ConflictError,
    EngramError,
    InvalidRequestError,
    NotFoundError,
    Settings,
    Storage,
    area_key,
    crypto,
    wants_gpu,
)
from training.bootstrap import base_model_location
from training.data import split
from training.recipe import RecipeConfig, evaluate, fit, load_config

logger = logging.getLogger(__name__)
_CHECKPOINT = re.compile(r"^checkpoint_(\d+)$")


def fine_tuner_name(settings: Settings) -> str:
    """The fine-tuner actor's name: one per control database."""
    return actor_name(FINE_TUNER, settings.control_db_url)


def fine_tuner(settings: Settings, namespace: str = NAMESPACE) -> ActorHandle:
    """The fine-tuner actor; started (with the GPU broker) when none runs. Ray must be initialized."""
    options = control_actor_options(fine_tuner_name(settings), namespace) | {"max_concurrency": 64}
    actor: Any = ray.remote(FineTuner)
    handle: ActorHandle = actor.options(**options).remote(settings)
    return handle


@dataclass(frozen=True)
class JobSupervisor:
    """What the recipe's first worker calls at each checkpoint: records the step's loss as a job
    event, and answers whether to stop (the broker preempted or cancelled the run)."""

    database_url: str
    job_id: str
    broker: ActorHandle
    attempt: int

    def __call__(self, step: int, metrics: dict[str, Any]) -> bool:
        loss = float(metrics["loss"])
        data = {"step": step, "train_loss": loss, "epoch": metrics.get("epoch")}
        JobStore(self.database_url).event(self.job_id, f"step {step}: training loss={loss:.4f}", data)
        self.broker.checkpointed.remote(self.job_id, self.attempt, step, "")  # where a resume starts
        return bool(ray.get(self.broker.should_stop.remote(self.job_id, self.attempt)))


def checkpoints(settings: Settings, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's checkpoints kept on storage (Ray Train's ``checkpoint_<step>`` folders), oldest
    first, with the training loss its supervisor recorded at that step."""
    events = JobStore.from_settings(settings).events(job["tenant_id"], job["id"], limit=100_000)
    losses = {
        e["data"]["step"]: e["data"]["train_loss"]
        for e in events
        if isinstance(e["data"], dict) and {"step", "train_loss"} <= e["data"].keys()
    }
    folder = area_key(job["tenant_id"], "checkpoints", job["id"])
    written: dict[int, datetime] = {}  # step -> when the last file of its checkpoint was written
    for entry in Storage.of(settings).files(folder):
        checkpoint = entry.key[len(folder) + 1 :].split("/", 1)[0]  # the folder the file is in
        if (match := _CHECKPOINT.match(checkpoint)) and entry.mtime is not None:
            step = int(match.group(1))
            written[step] = max(written.get(step, entry.mtime), entry.mtime)
    return [
        {"step": step, "created_at": at.astimezone(UTC), "metrics": {"train_loss": losses.get(step)}}
        for step, at in sorted(written.items())
    ]


class FineTuner:
    """Runs fine-tuning jobs, one thread each; all its state is in SQL (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database_url = settings.control_db_url
        self.store = JobStore(self.database_url)
        self.files = FileStore(settings)
        self.models = ModelRegistry.from_settings(settings)
        self.keys = DataKeys.from_settings(settings)
        self.broker = start_broker(settings)
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        for job in self.store.unfinished():  # a restart: carry on with every job
            self._start(job["id"])

    # -- what the gateway calls ----------------------------------------------------------------

    def submit(self, tenant_id: str, request: dict[str, Any], origin: str | None = None) -> dict[str, Any]:
        """Check and record a job request (JobRequest's fields); its thread takes it from there."""
        body = JobRequest.model_validate(request)
        check_request(self.settings, self.files, tenant_id, body)
        job = self.store.create(tenant_id, body, origin)
        self._start(job["id"])
        return job

    def cancel(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        job = self.store.get(tenant_id, job_id)
        if job["status"] in FINAL:
            raise ConflictError(f"job {job_id} is already {job['status']}", param="job_id")
        self.store.update(job_id, "cancelled by the tenant", status="cancelled", finished_at=_now())
        with contextlib.suppress(NotFoundError, ConflictError):  # not at the broker yet, or ended there
            unwrap(self.broker.cancel.remote(job_id))  # a running recipe stops at its next checkpoint
        return self.store.get(tenant_id, job_id)

    def running(self) -> list[str]:
        """Ids of the jobs this actor is driving now."""
        with self._lock:
            return [job_id for job_id, t in self._threads.items() if t.is_alive()]

    # -- a job's thread --------------------------------------------------------------------------

    def _start(self, job_id: str) -> None:
        with self._lock:
            thread = threading.Thread(target=self._drive, args=(job_id,), name=job_id, daemon=True)
            self._threads[job_id] = thread
            thread.start()

    def _drive(self, job_id: str) -> None:
        try:
            self._run(job_id)
        except Exception as e:
            logger.exception("fine-tuning job %s failed", job_id)
            if self.store.get(None, job_id)["status"] not in FINAL:
                param = e.param if isinstance(e, EngramError) else None
                error = {"code": type(e).__name__, "message": str(e)[:2000], "param": param}
                self.store.update(
                    job_id, f"failed: {e}"[:2000], status="failed", error=error, finished_at=_now()
                )
            # give back whatever it held (a no-op when ended; a restarting broker reads it from SQL)
            with contextlib.suppress(Exception):
                self.broker.cancel.remote(job_id)

    def _final(self, job_id: str) -> bool:
        return self.store.get(None, job_id)["status"] in FINAL

    def _run(self, job_id: str) -> None:
        job = self.store.get(None, job_id)
        tenant = job["tenant_id"]
        train, validation = self._examples(job)
        if job["status"] == "validating_files":
            message = f"files validated: {len(train)} training and {len(validation)} validation examples"
            self.store.update(job_id, message, status="queued")
        training = self.settings.training
        gpus = training.gpus_per_worker * training.num_workers if wants_gpu(training.use_gpu) else 0.0
        try:
            label = f"fine-tune of {job['model']}"
            unwrap(
                self.broker.submit.remote(
                    tenant, gpus, priority=self.settings.training.priority, workload_id=job_id, label=label
                )
            )
        except ConflictError:  # submitted before this actor restarted: its run died with the old actor
            held = unwrap(self.broker.workload.remote(job_id))
            if held.state in ("running", "preempting"):
                lost = f"attempt {held.attempt} lost: the fine-tuner restarted"
                unwrap(self.broker.interrupted.remote(job_id, held.attempt, lost))
        config = self._recipe(job, use_gpu=gpus > 0)
        sealing = self.keys.checkpoint_sealing(tenant, job_id)
        runs = Storage.of(self.settings).uri(area_key(tenant, "checkpoints"))
        waiting = ""
        while True:
            if self._final(job_id):
                return
            workload = unwrap(self.broker.workload.remote(job_id))
            if workload.state in TERMINAL:
                self.store.update(
                    job_id,
                    f"the GPU broker ended the run: {workload.state}",
                    status="cancelled",
                    finished_at=_now(),
                )
                return
            lease = unwrap(self.broker.lease.remote(job_id))
            if lease is None:
                events = unwrap(self.broker.events.remote(job_id))
                last = str(events[-1]) if events else ""
                if last.startswith("waiting") and last != waiting:
                    waiting = last
                    self.store.event(job_id, last)
                time.sleep(self.settings.broker.poll_s)  # the broker's state is in SQL: poll it
                continue
            step = workload.checkpoint_step or 0
            node = ray.get_runtime_context().get_node_id()
            if not unwrap(self.broker.started.remote(job_id, lease.attempt, step, node)):
                continue
            how = f"resuming from step {step}" if step else "from step 0"
            self.store.update(
                job_id, f"running ({how})", status="running", started_at=job["started_at"] or _now()
            )
            supervisor = JobSupervisor(self.database_url, job_id, self.broker, lease.attempt)
            out = crypto.private_dir()
            try:
                result = fit(
                    config,
                    train,
                    storage_path=runs,
                    storage_options=self.settings.storage,
                    name=job_id,
                    sealing=sealing,
                    supervisor=supervisor,
                    max_failures=self.settings.training.max_failures,
                    output_dir=out / "adapter",
                )
                if result.stopped:
                    unwrap(
                        self.broker.stopped.remote(
                            job_id, lease.attempt, result.steps, result.checkpoint_path or ""
                        )
                    )
                    if self._final(job_id):
                        return
                    self.store.update(
                        job_id,
                        f"preempted at step {result.steps}: the GPU broker took the GPUs back",
                        status="preempted",
                    )
                    self.store.update(job_id, "queued to resume from its checkpoint", status="queued")
                    continue
                unwrap(
                    self.broker.finish.remote(
                        job_id, lease.attempt, step=result.steps, checkpoint=result.checkpoint_path
                    )
                )
                self._conclude(job, config, result, validation, out / "adapter")
            finally:
                shutil.rmtree(out, ignore_errors=True)
            return

    def _examples(self, job: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        """The training and validation examples: the files as uploaded, or a seeded split."""
        tenant = job["tenant_id"]
        try:
            train = self.files.examples(tenant, job["training_file"])
            validation = (
                self.files.examples(tenant, job["validation_file"]) if job["validation_file"] else None
            )
        except NotFoundError as e:
            raise NotFoundError(f"a file of the job is gone: {e}", param="training_file") from e
        if validation is None:
            fraction = self._recipe(job, use_gpu=False).validation_fraction
            train, validation = split(train, fraction, job["seed"])
        if not train:
            raise InvalidRequestError("the training file has no examples", param="training_file")
        return train, validation

    def _recipe(self, job: dict[str, Any], *, use_gpu: bool) -> RecipeConfig:
        training = self.settings.training
        return load_config(
            training.recipe,
            base_model=base_model_location(self.settings, job["model"]),
            seed=job["seed"],
            num_workers=training.num_workers,
            cpus_per_worker=training.cpus_per_worker,
            checkpoint_every=training.checkpoint_every,
            use_gpu=use_gpu,
            gpus_per_worker=training.gpus_per_worker,
            **job["hyperparameters"],
        )

    def _conclude(
        self, job: dict[str, Any], config: RecipeConfig, result: Any, validation: list[Any], adapter: Path
    ) -> None:
        """Evaluate, register the adapter as the model's next version, deploy it if it is better."""
        job_id, tenant = job["id"], job["tenant_id"]
        resumed = (
            f" (resumed from its checkpoints at steps {result.starts[1:]})" if len(result.starts) > 1 else ""
        )
        self.store.update(
            job_id, f"trained {result.steps} steps{resumed}; evaluating on {len(validation)} examples"
        )
        measure: Any = ray.remote(num_cpus=self.settings.training.cpus_per_worker)(_evaluate_copy)
        report = ray.get(  # on any node with room: the adapter's files travel with the task
            measure.remote(
                _files(adapter),
                config.base_model,
                validation,
                max_seq_len=config.max_seq_len,
                storage_options=self.settings.storage,
            )
        )
        metrics = {
            "validation_loss": report["adapter"]["loss"],
            "validation_perplexity": report["adapter"]["perplexity"],
            "exact_match": report["adapter"]["exact_match"],
            "base_validation_loss": report["base"]["loss"],
            "base_exact_match": report["base"]["exact_match"],
            "train_loss": result.final_loss,
            "steps": result.steps,
        }
        self.store.event(
            job_id,
            f"evaluated: validation loss {metrics['validation_loss']:.4f} (base "
            f"{metrics['base_validation_loss']:.4f}), exact match {metrics['exact_match']:.2f}",
            data=metrics,
        )
        name = model_name(job["model"], tenant, job["suffix"])
        current = self._deployed_loss(tenant, name)
        beats_base = metrics["validation_loss"] < metrics["base_validation_loss"]
        beats_current = current is None or metrics["validation_loss"] < current
        lineage = {
            "base_model": job["model"],
            "training_file": job["training_file"],
            "training_file_sha256": self.files.get(tenant, job["training_file"])["sha256"],
            "validation_file": job["validation_file"],
            "validation_file_sha256": (
                self.files.get(tenant, job["validation_file"])["sha256"] if job["validation_file"] else None
            ),
            "hyperparameters": job["hyperparameters"],
            "seed": job["seed"],
            "recipe": config.model_dump(mode="json", exclude={"base_model"}),
        }
        adapter_version = self.models.register_adapter(
            tenant,
            job["model"],
            job["suffix"],
            adapter,
            job_id=job_id,
            lineage=lineage,
            metrics=metrics,
            deploy=beats_base and beats_current,
        )
        if beats_base and beats_current:
            verdict = f"deployed version {adapter_version.version}"
        elif not beats_base:
            verdict = f"version {adapter_version.version} not deployed: it does not beat the base model"
        else:
            verdict = f"version {adapter_version.version} not deployed: it does not beat the version served"
        self.store.update(
            job_id,
            f"succeeded; {verdict}",
            status="succeeded",
            fine_tuned_model=name,
            version=adapter_version.version,
            metrics=metrics,
            trained_tokens=result.tokens,
            finished_at=_now(),
        )

    def _deployed_loss(self, tenant_id: str, model: str) -> float | None:
        try:
            described = self.models.describe(tenant_id, model)
        except NotFoundError:
            return None
        served = described["deployed_version"]
        for v in described["versions"]:
            if v["version"] == served and v["metrics"]:
                return float(v["metrics"].get("validation_loss", float("inf")))
        return None


def _now() -> datetime:
    return datetime.now(UTC)


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative name (an adapter: a few MB)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _evaluate_copy(adapter: dict[str, bytes], base_model: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``evaluate`` on whichever node runs it, the adapter's files written to its scratch."""
    with tempfile.TemporaryDirectory(prefix="engram-adapters-") as scratch:
        for name, data in adapter.items():
            path = Path(scratch) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return evaluate(base_model, scratch, *args, **kwargs)
