"""The GPU broker's policy: who gets the pooled GPUs, decided in memory, each decision with its reason.

Every GPU user is a *workload* asking for a (fractional) number of GPUs: a serving replica
(an LLM or embedding replica) or a training run. The broker admits workloads onto the pool in
the spirit of Kueue, and the admitted ones then ask Ray for exactly that many GPUs
(``num_gpus=``), so Ray's scheduler places them on the GPU nodes.

The policy, applied by ``GPUBroker.schedule`` after every change:

1. **Serving first.** Serving replicas are admitted before any training, oldest first. When the
   free GPUs are not enough, training is preempted for them: borrowing runs before runs within
   their tenant's nominal quota, the lowest priority class first, the newest admitted first
   among equals. Training only ever has what serving leaves idle.
2. **Nominal quotas (fair share).** Each tenant has a nominal GPU quota (``nominal_gpus`` of its
   quota, ``actors.quotas``). Pending training is taken by priority class
   (interactive before batch), then age; a run that fits in its tenant's nominal quota (counting
   the tenant's runs of the same or a higher class) is admitted, and if the GPUs are held by
   others' borrowing runs, or by the same tenant's lower-priority runs, those are preempted to
   give the quota back.
3. **Borrowing.** What is still idle is lent to training beyond its tenant's quota: by priority
   class, then to the tenant that borrows least, then oldest first.

Which runs of a tenant count as within its quota is decided afresh at each step: its running
workloads by priority class then admission time, first fit into the nominal quota; the rest are
borrowing. A preempted run is first *preempting*: it keeps its GPUs until its runner has
written a checkpoint and stopped (or ``preemption_grace_s`` passed); it is then *preempted*,
back in the queue with its original age, and resumes from its checkpoint when admitted again.
A workload waiting for GPUs that preempted runs are releasing holds what is free meanwhile, so
nothing smaller slips in and is preempted again at once.

States: queued → admitted → running → (preempting → preempted → admitted → running …) →
finished | failed | cancelled. Every decision writes an event (``gpu_events``) that says why.

This module is pure: ``Plan`` takes the live workloads and returns decisions;
``actors.broker`` loads them from SQL and writes the decisions back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, get_args

Kind = Literal["serving", "training"]
Priority = Literal["serving", "interactive", "batch"]
State = Literal["queued", "admitted", "running", "preempting", "preempted", "finished", "failed", "cancelled"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
RANK: dict[str, int] = {p: i for i, p in enumerate(PRIORITIES)}  # lower is more important
HOLDING: tuple[State, ...] = ("admitted", "running", "preempting")  # these hold their GPUs
PENDING: tuple[State, ...] = ("queued", "preempted")
TERMINAL: tuple[State, ...] = ("finished", "failed", "cancelled")
EPS = 1e-6  # GPU amounts are compared with this slack (Ray itself counts in 1e-4 GPU)


@dataclass(frozen=True)
class Workload:
    """One GPU user as the broker sees it."""

    workload_id: str
    tenant_id: str | None
    kind: Kind
    priority: Priority
    label: str | None
    gpus: float
    state: State
    attempt: int
    preemptions: int
    checkpoint_dir: str | None
    checkpoint_step: int | None
    checkpoint_path: str | None
    created_at: datetime
    updated_at: datetime
    admitted_at: datetime | None
    preempted_at: datetime | None
    finished_at: datetime | None

    @property
    def rank(self) -> int:
        return RANK[self.priority]


def gpus_text(gpus: float) -> str:
    """A GPU amount as people write it: 1, 0.5, 2.25."""
    return f"{round(gpus, 4):g}"


@dataclass(frozen=True)
class Decision:
    workload_id: str
    action: Literal["admit", "preempt", "requeue", "wait"]
    message: str


class Plan:
    """One scheduling pass over the live workloads, in memory; ``decisions`` is its outcome."""

    def __init__(
        self,
        live: list[Workload],
        capacity: float,
        nominal: dict[str, float],
        now: datetime,
        grace: timedelta,
    ) -> None:
        self.now = now
        self.capacity = capacity
        self.nominal = nominal
        self.decisions: list[Decision] = []
        for w in live:
            if w.state == "preempting" and w.preempted_at and now - w.preempted_at >= grace:
                self.decisions.append(
                    Decision(
                        w.workload_id,
                        "requeue",
                        f"did not checkpoint and stop within {grace.total_seconds():g} s of its "
                        "preemption; taken as stopped and requeued",
                    )
                )
        requeued = {d.workload_id for d in self.decisions}
        live = [replace(w, state="preempted") if w.workload_id in requeued else w for w in live]
        holding = [w for w in live if w.state in HOLDING]
        self.free = capacity - sum(w.gpus for w in holding)
        self.incoming = sum(w.gpus for w in holding if w.state == "preempting")  # being released
        self.serving = sum(w.gpus for w in holding if w.kind == "serving")
        # Training that holds GPUs and may be preempted (new admissions are added as we go).
        self.training = {
            w.workload_id: w for w in holding if w.kind == "training" and w.state != "preempting"
        }
        self.pending = sorted(
            (w for w in live if w.state in PENDING), key=lambda w: (w.created_at, w.workload_id)
        )

    # -- what tenants hold --------------------------------------------------------------------

    def _nominal(self, tenant: str | None) -> float:
        return self.nominal.get(tenant or "", 0.0)

    def in_quota(self, tenant: str | None, max_rank: int = len(PRIORITIES)) -> list[Workload]:
        """The tenant's runs (of rank <= ``max_rank``) that fit in its nominal quota: first fit by
        priority class, then admission time."""
        runs = sorted(
            (w for w in self.training.values() if w.tenant_id == tenant and w.rank <= max_rank),
            key=lambda w: (w.rank, w.admitted_at or self.now, w.workload_id),
        )
        fitted: list[Workload] = []
        used = 0.0
        for w in runs:
            if used + w.gpus <= self._nominal(tenant) + EPS:
                fitted.append(w)
                used += w.gpus
        return fitted

    def usage(self, tenant: str | None) -> float:
        return sum(w.gpus for w in self.training.values() if w.tenant_id == tenant)

    def borrowing(self, w: Workload) -> bool:
        return w.workload_id not in {v.workload_id for v in self.in_quota(w.tenant_id)}

    # -- decisions ----------------------------------------------------------------------------

    def _admit(self, w: Workload, why: str) -> None:
        self.free -= w.gpus
        if w.kind == "serving":
            self.serving += w.gpus
        else:
            self.training[w.workload_id] = replace(w, state="admitted", admitted_at=self.now)
            held = self.training[w.workload_id]
            t = w.tenant_id
            use, nom = gpus_text(self.usage(t)), gpus_text(self._nominal(t))
            if self.borrowing(held):
                why = f"borrows idle GPUs beyond tenant {t}'s nominal quota ({use} used of nominal {nom})"
            else:
                why = f"within tenant {t}'s nominal quota ({use} used of nominal {nom})"
            if w.checkpoint_step:
                why += f"; resumes from its checkpoint at step {w.checkpoint_step}"
        self.decisions.append(Decision(w.workload_id, "admit", f"{gpus_text(w.gpus)} GPU: {why}"))

    def _wait(self, w: Workload, why: str) -> None:
        self.decisions.append(Decision(w.workload_id, "wait", why))

    def _victims(self, candidates: list[Workload], need: float) -> list[Workload] | None:
        """The fewest candidates, in preemption order, that free ``need`` GPUs; None if all can't."""
        candidates = [c for c in candidates if c.gpus > EPS]  # a CPU-only run frees nothing
        tenants = {c.tenant_id for c in candidates}
        quota_of = {t: {v.workload_id for v in self.in_quota(t)} for t in tenants}

        def order(v: Workload) -> tuple[bool, int, float]:
            admitted = (v.admitted_at or self.now).timestamp()
            return (v.workload_id in quota_of[v.tenant_id], -v.rank, -admitted)

        chosen: list[Workload] = []
        freed = 0.0
        for v in sorted(candidates, key=order):
            if freed >= need - EPS:
                break
            chosen.append(v)
            freed += v.gpus
        return chosen if freed >= need - EPS else None

    def _claim(self, w: Workload, candidates: list[Workload], reason: str, blocked: str) -> bool:
        """Admit ``w`` now, or make room by preemption and hold the room; False if impossible."""
        if w.gpus <= self.free + EPS:
            self._admit(w, reason)
            return True
        if w.gpus <= self.free + self.incoming + EPS:
            self.incoming -= w.gpus - self.free
            self.free = 0.0
            self._wait(w, f"{reason}; waiting for GPUs that preempted runs are releasing")
            return True
        victims = self._victims(candidates, w.gpus - self.free - self.incoming)
        if victims is None:
            self._wait(w, blocked)
            return False
        names = ", ".join(v.workload_id for v in victims)
        need, free = gpus_text(w.gpus), gpus_text(self.free)
        for v in victims:
            what = "borrows beyond" if self.borrowing(v) else "runs within"
            nominal = gpus_text(self._nominal(v.tenant_id))
            why = (
                f"{w.workload_id} ({w.priority}) needs {need} GPU and {free} are free; this {v.priority} "
                f"run {what} tenant {v.tenant_id}'s nominal quota {nominal}; it checkpoints, stops and "
                "is requeued"
            )
            self.decisions.append(Decision(v.workload_id, "preempt", why))
            del self.training[v.workload_id]
        self.incoming += self.free + sum(v.gpus for v in victims) - w.gpus
        self.free = 0.0
        self._wait(w, f"{reason}; waiting while {names} checkpoint and stop")
        return True

    def run(self) -> list[Decision]:
        decided: set[str] = set()
        # 1. Serving, oldest first, may preempt any training.
        for w in (w for w in self.pending if w.kind == "serving"):
            decided.add(w.workload_id)
            held = gpus_text(sum(t.gpus for t in self.training.values()))
            need, free, pool = gpus_text(w.gpus), gpus_text(self.free), gpus_text(self.capacity)
            blocked = (
                f"serving needs {need} GPU of the pool's {pool}: {free} are free, {held} held by "
                f"training that can make room, {gpus_text(self.serving)} by serving"
            )
            self._claim(w, list(self.training.values()), "serving comes first", blocked)
        # 2. Training within its tenant's nominal quota, by priority class then age.
        training = sorted(
            (w for w in self.pending if w.kind == "training"),
            key=lambda w: (w.rank, w.created_at, w.workload_id),
        )
        reserved: dict[str | None, float] = {}  # in-quota GPUs tenants wait for, room already made
        for w in training:
            t = w.tenant_id
            used = sum(v.gpus for v in self.in_quota(t, w.rank)) + reserved.get(t, 0.0)
            if used + w.gpus > self._nominal(t) + EPS:
                continue
            decided.add(w.workload_id)
            candidates = [
                v
                for v in self.training.values()
                if (v.tenant_id != t and self.borrowing(v)) or (v.tenant_id == t and v.rank > w.rank)
            ]
            use, nominal = gpus_text(used), gpus_text(self._nominal(t))
            reason = f"tenant {t} reclaims its nominal quota ({use} used of nominal {nominal})"
            blocked = (
                f"tenant {t} is within its nominal quota ({use} used of {nominal}) but "
                f"{gpus_text(self.free)} GPU are free, serving holds {gpus_text(self.serving)} and no "
                "borrowed GPUs can be taken back"
            )
            if self._claim(w, candidates, reason, blocked) and w.workload_id not in self.training:
                reserved[t] = reserved.get(t, 0.0) + w.gpus
        # 3. Borrowing of what is idle: priority class, then the tenant that borrows least, then age.
        waiting = [w for w in training if w.workload_id not in decided]
        while True:
            fits = [w for w in waiting if w.gpus <= self.free + EPS]
            if not fits:
                break
            best = min(
                fits,
                key=lambda w: (
                    w.rank,
                    self.usage(w.tenant_id) - self._nominal(w.tenant_id),
                    w.created_at,
                    w.workload_id,
                ),
            )
            self._admit(best, "")
            waiting.remove(best)
        for w in waiting:
            t = w.tenant_id
            use, nominal = gpus_text(self.usage(t)), gpus_text(self._nominal(t))
            idle, need = gpus_text(max(self.free, 0.0)), gpus_text(w.gpus)
            why = f"tenant {t} uses {use} of nominal {nominal} GPU and {idle} idle GPUs are left to borrow"
            self._wait(w, f"{why} (needs {need})")
        return self.decisions
