"""The Optuna study of one search: its storage (a journal file on one machine, nothing to
install; a database URL for several), the sampler and pruner, the search it was made for
(a study of that name with another search is refused, not mixed), and the trials of workers
that stopped: failed, so that another worker runs a trial in their place."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from xgraph.errors import SpecError

JOURNAL = "study.journal"
SEARCH_ATTR = "xgraph_search"
GRACE_SECONDS = 120.0  # a heartbeat older than this: its worker stopped (another machine's)
HEARTBEAT_SECONDS = 10.0
PRUNERS = ("median", "hyperband", "none")


def shown_url(url: str) -> str:
    """A storage URL for messages, its password hidden."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def open_storage(url: str | None, out: Path) -> Any:
    """A journal file in `out` (default), a journal file named by `url` (a path ending
    in .journal), or the database at a SQLAlchemy URL, checked to answer now."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if url is None or ("://" not in url and url.endswith(".journal")):
        path = out / JOURNAL if url is None else Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except Exception as exc:  # sqlalchemy's errors, a missing driver: named, not traced
            text = str(exc)
            # two workers creating the schema at once: one wins, the other tries again
            if attempt < 4 and ("duplicate key" in text or "already exists" in text):
                time.sleep(0.5 + attempt)
                continue
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise SpecError(
                f"cannot use the storage {shown_url(url)}: {first}",
                hint="a SQLAlchemy URL of a reachable database (postgresql://user:pw@host/db), "
                "or leave out --storage for a journal file in --out",
            ) from None
    raise AssertionError("unreachable")


def make_pruner(name: str, epochs: int) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 2))
    return optuna.pruners.NopPruner()


def load_study(
    storage: Any, name: str, search: dict[str, Any], pruner: Any, seed: int | None = None
) -> Any:
    """The study `name` (made if new) for `search`; one made for another search is an
    error, since its trials' values would mean other things. TPE, its first 4 trials
    random; `seed` makes one worker's proposals the same run after run."""
    import optuna

    sampler = optuna.samplers.TPESampler(constant_liar=True, n_startup_trials=4, seed=seed)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )
    wanted = json.dumps(search, sort_keys=True)
    recorded = study.user_attrs.get(SEARCH_ATTR)
    if recorded is None:
        study.set_user_attr(SEARCH_ATTR, wanted)
    elif recorded != wanted:
        raise SpecError(
            f"the study '{name}' exists with another search: its trials would mean other things",
            hint="give another --study name, or search what it searched",
            notes=[f"its search: {recorded}", f"this search: {wanted}"],
        )
    return study


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _stopped(worker: str, heartbeat: float, now: float) -> str | None:
    """Why a running trial's worker is taken to have stopped, or None."""
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return f"its worker (process {pid} on {host}) stopped"
        except PermissionError:
            pass
    if now - heartbeat > GRACE_SECONDS:
        return f"its worker {worker} gave no sign of life for {now - heartbeat:.0f} s"
    return None


def fail_stopped_trials(study: Any) -> list[int]:
    """Mark failed the running trials whose worker stopped; they are not counted, so
    another trial runs in their place. Returns their numbers."""
    from optuna.trial import TrialState

    failed = []
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if not isinstance(worker, str):
            continue
        reason = _stopped(worker, float(trial.user_attrs.get("heartbeat", now)), now)
        if reason is None:
            continue
        storage = study._storage
        try:
            storage.set_trial_user_attr(trial._trial_id, "stopped", reason)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except RuntimeError:  # another worker marked it first
            continue
        failed.append(trial.number)
    return failed


def counted(study: Any) -> int:
    """The trials that count towards the study's number: all but those of stopped
    workers."""
    return sum(1 for t in study.get_trials(deepcopy=False) if "stopped" not in t.user_attrs)
