"""Embedding spread over a Ray cluster: Ray Data `map_batches` over an actor pool, each actor loading the model once.

The build talks to `RayEmbedder` exactly as to a local embedder (`encode`, `count_tokens`, `dimension`, ...), so the
vectors reach whichever store the build writes to. Only `encode` leaves the process: chunking counts tokens locally.
Ray is imported inside functions only: `ask` and `chat` never pay for it (`import ray` alone takes seconds).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from knowledge.errors import PatientQAError
from knowledge.settings import RaySettings

LOCAL = "local"  # `--ray` without an address: start a cluster on this machine for the build, stop it after
POOL_START_SECONDS = 300  # how long the actors may take to start and load the model on a busy cluster
INSTALL_HINT = "install it with: pip install 'patient-qa[scale]' (or pip install -e '.[scale]' in a checkout)"


class RayUnavailableError(PatientQAError):
    """Ray (the optional `scale` extra) is not installed."""


class RayClusterError(PatientQAError):
    """The Ray cluster could not be started or reached, or its workers failed."""


class Encoder(Protocol):
    """What the build needs of an embedder (`knowledge.embedding.Embedder`, `OnnxEmbedder`, test fakes)."""

    model_name: str
    threads: int

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


def is_local(address: str | None) -> bool:
    """Whether `address` asks for a cluster started on this machine for the build (no address, "" or "local")."""
    return address in (None, "", LOCAL)


def import_ray() -> Any:
    """`ray` with Ray Data, or a one-line error saying how to install the extra."""
    try:
        import ray
        import ray.data  # noqa: F401 - the map_batches pipeline needs it; ray without [data] lacks pyarrow
    except ImportError as err:
        raise RayUnavailableError(f"ray[data] is not installed ({err.name} is missing); {INSTALL_HINT}") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on a host:port nobody listens on (ray.init would retry for a minute first)."""
    if address == "auto" or "://" in address:
        return  # "auto" reads the local cluster file; ray:// client addresses are checked by ray.init itself
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RayClusterError(f"Ray address '{address}' is not HOST:PORT (for example 10.0.0.5:6379), 'auto' or ray://...")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise RayClusterError(f"cannot reach the Ray cluster at {address} ({err.strerror or err}); "
                              "is 'ray start --head' running there, and is the port open?") from None


def _project_root() -> str:
    """The folder holding the `knowledge` package, so local workers import this code, not another install."""
    return str(Path(__file__).resolve().parent.parent)


def _worker_env(options: RaySettings) -> dict[str, str]:
    """Environment of every worker: offline model loading, and the thread count of one actor."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(options.worker_threads)}
    if is_local(options.address):
        env["PYTHONPATH"] = os.pathsep.join([_project_root(), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


@contextmanager
def ray_cluster(options: RaySettings, progress: bool = False) -> Iterator[Any]:
    """Ray initialised for one build: a local cluster of `workers × worker_threads` CPUs, or a connection to `address`.

    A local cluster is shut down afterwards; a remote one is only disconnected from.
    """
    if not is_local(options.address):
        _check_reachable(str(options.address))  # before `import ray`, which alone takes seconds
    ray = import_ray()
    if ray.is_initialized():  # a caller (a test, a notebook) already chose the cluster
        yield ray
        return
    runtime_env = {"env_vars": _worker_env(options)}
    # Ray's INFO and WARNING lines (token auth, executor plans) bury the build's own output; errors still raise.
    common = {"runtime_env": runtime_env, "logging_level": logging.WARNING if progress else logging.ERROR,
              "log_to_driver": progress}
    try:
        if is_local(options.address):
            # "local": a new cluster even where `ray start` left one (ray.init() alone would join that instead).
            ray.init(address="local", num_cpus=options.workers * options.worker_threads, include_dashboard=False,
                     **common)
        else:
            ray.init(address=options.address, **common)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as err:
        where = "a local Ray cluster" if is_local(options.address) else f"the Ray cluster at {options.address}"
        raise RayClusterError(f"cannot start or join {where}: {str(err).splitlines()[0][:160]}") from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    context.enable_operator_progress_bars = progress
    context.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.WARNING if progress else logging.ERROR)
    try:
        yield ray
    finally:
        ray.shutdown()


def embedder_factory(local: Encoder, threads: int) -> Callable[[], Encoder]:
    """How an actor makes its own copy of `local`: the same model file and settings, `threads` threads.

    A factory, not the live object, crosses to the workers: a loaded session holds locks and native handles.
    Unknown embedders (small test fakes) are sent as they are.
    """
    from knowledge.embedding import Embedder
    from knowledge.onnx_embedder import OnnxEmbedder

    if isinstance(local, OnnxEmbedder):
        return partial(node_onnx_embedder, str(local._onnx_path), local.config, local.model_name, threads)
    if isinstance(local, Embedder):
        return partial(Embedder, local.model_name, threads=threads)
    return partial(_same, local)


def node_onnx_embedder(onnx_path: str, config: Any, model_name: str, threads: int) -> Encoder:
    """The driver's ONNX export where this node can read it (this machine, a shared disk), else the node's own
    verified export of the same model, made once per node like `index build` does (it needs torch there)."""
    from knowledge.embedding import resolve_model_path
    from knowledge.onnx_embedder import OnnxEmbedder, cached_export

    model_dir = Path(resolve_model_path(model_name))
    path = Path(onnx_path)
    if not path.is_file():
        path, record = cached_export(model_dir, model_name)
        config = record.config
    return OnnxEmbedder(path, model_dir, config, model_name, threads=threads)


def _same(embedder: Encoder) -> Encoder:
    return embedder


class EmbedActor:
    """One actor of the pool: loads its embedder once, then turns batches of texts into vectors, row ids kept."""

    def __init__(self, factory: Callable[[], Encoder], model_batch_size: int) -> None:
        self.embedder = factory()
        self.model_batch_size = model_batch_size
        load = getattr(self.embedder, "load", None)
        if callable(load):
            load()  # the model loads when the actor starts, not inside its first batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.encode([str(t) for t in batch["text"]], batch_size=self.model_batch_size)
        rows = np.asarray(batch["row"], dtype=np.int64)
        return {"row": rows, "vector": np.asarray(vectors, dtype=np.float32),
                "worker": np.full(len(rows), os.getpid(), dtype=np.int64)}


class RayEmbedder:
    """An embedder whose `encode` runs on a Ray actor pool; everything else is answered by the local embedder."""

    # The build hands over all its texts in one call: one Dataset, one actor pool, each model loaded once.
    texts_per_call = sys.maxsize

    def __init__(self, local: Encoder, options: RaySettings, factory: Callable[[], Encoder] | None = None) -> None:
        self.local = local
        self.options = options
        self.factory = factory or embedder_factory(local, options.worker_threads)
        self.model_name = local.model_name
        self.backend = f"ray+{getattr(local, 'backend', 'custom')}"
        self.last_workers: frozenset[int] = frozenset()  # process ids of the actors that did the last `encode`

    @property
    def threads(self) -> int:
        return self.local.threads

    @property
    def dimension(self) -> int:
        return self.local.dimension

    @property
    def max_tokens(self) -> int:
        return self.local.max_tokens

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.local.count_tokens(texts)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text in the order given, computed by the actor pool."""
        if not len(texts):
            return np.zeros((0, self.dimension), dtype=np.float32)
        ray = import_ray()
        if not ray.is_initialized():
            raise RayClusterError("Ray is not initialised; run the build inside knowledge.ray_embedding.ray_cluster")
        # Every actor is up before the first batch is handed out, so all share the work; a cluster too small for
        # the pool fails after this wait instead of queueing forever.
        ray.data.DataContext.get_current().wait_for_min_actors_s = POOL_START_SECONDS
        rows = [{"row": i, "text": str(t)} for i, t in enumerate(texts)]
        # Enough blocks that every actor gets work, and none larger than one batch needs.
        blocks = max(self.options.workers, -(-len(rows) // self.options.batch_size))
        with warnings.catch_warnings():
            # max_restarts has no named parameter in Ray 2.60 (the catch-all is deprecated for 2.64). Without it an
            # actor that dies is restarted forever, and Ray prints an error line about its constructor arguments.
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
                EmbedActor,
                fn_constructor_args=(self.factory, batch_size),
                batch_size=self.options.batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.options.workers),
                num_cpus=self.options.worker_threads,
                max_restarts=0,  # a failed actor fails the build, which then keeps the previous library
            )
        out: np.ndarray | None = None
        seen = np.zeros(len(texts), dtype=bool)
        workers: set[int] = set()
        # A failure below becomes one RayClusterError naming its cause; Ray Data would also print its whole traceback.
        trace_logger = logging.getLogger("ray.data.exceptions")
        trace_level = trace_logger.level
        trace_logger.setLevel(logging.CRITICAL)
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                if out is None:
                    out = np.zeros((len(texts), batch["vector"].shape[1]), dtype=np.float32)
                out[batch["row"]] = batch["vector"]
                seen[batch["row"]] = True
                workers.update(int(pid) for pid in np.unique(batch["worker"]))
        except ray.exceptions.GetTimeoutError:
            raise RayClusterError(
                f"the Ray cluster did not start {self.options.workers} embedding actors of "
                f"{self.options.worker_threads} CPU(s) each within {POOL_START_SECONDS} s; lower ray_workers or "
                "ray_worker_threads, or add nodes") from None
        except ray.exceptions.RayError as err:
            first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise RayClusterError(f"the Ray embedding workers failed: {first[:200]} (Ray's logs: "
                                  "/tmp/ray/session_latest/logs on the node)") from None
        finally:
            trace_logger.setLevel(trace_level)
        if out is None or not seen.all():  # every row carries its id back; a gap would misplace vectors
            raise RayClusterError(f"the Ray workers returned {int(seen.sum())} of {len(texts)} vectors")
        self.last_workers = frozenset(workers)
        return out


class RayIngestion:
    """Handed to `build_index` as its embedder: `knowledge.embedding.build_embedders` chooses the local embedder
    (and the ONNX export stored with the index) as for any build, then `distribute` puts it on the actor pool."""

    def __init__(self, options: RaySettings, local: Encoder | None = None) -> None:
        self.options = options
        self.local = local  # None: the embedder a plain build would choose (the cached ONNX export by default)
        self.embedder: RayEmbedder | None = None  # the last one made, for its `last_workers`

    def distribute(self, local: Encoder) -> RayEmbedder:
        self.embedder = RayEmbedder(local, self.options)
        return self.embedder
