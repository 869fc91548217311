"""A transformers text-classification model run inside the worker: the text never leaves it.

Install it with ``pip install 'django-textclass[local]'`` (transformers and torch). The model
comes from a folder on disk (``MODEL_PATH``, or ``MODEL_PATHS`` per model id) or from the
local Hugging Face cache, and is never downloaded: every load passes ``local_files_only``,
and a model id is turned into a cache folder before anything reads it. A missing model is a
configuration error naming the folder, stored as ``configuration`` and never retried.

Each process loads its own copy on first use and keeps it (one per folder). Nothing loads
at import or in ``manage.py check``, so the parent of a Celery prefork pool never holds a
model; should one be loaded before a fork anyway, the child forgets it and loads its own
(PyTorch's thread pools and a CUDA context do not survive a fork).

Answers follow the Inference API: every label, best first, unless ``top_k`` says otherwise;
``function_to_apply`` as the API (softmax for a single-label model, sigmoid for a
multi-label one or one label); inputs longer than the model takes are truncated.
"""

import importlib.util
import logging
import os
import re
import threading
import time
import weakref
from pathlib import Path

from django.core import checks

from django_textclass import catalog
from django_textclass.backends.base import BaseBackend, positive_number
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError
from django_textclass.types import Ranking, validate_model_id

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'django-textclass[local]'"
#: What the ``local`` extra brings, by import name.
EXTRA_PACKAGES = ("torch", "transformers")
DEVICE_RE = re.compile(r"(?:cpu|auto|cuda(?::\d+)?)")
#: A tokenizer that knows no limit reports one this large (transformers' VERY_LARGE_INTEGER).
NO_LIMIT = 10**9

#: Every live backend, so that a forked child can drop what its parent had loaded.
_instances = weakref.WeakSet()


def cpu_count():
    """The CPUs this process may run on (its affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Backend(BaseBackend):
    """Classifies with a local transformers model, one pipeline per model folder per process.

    Options (keys of the backend's ``OPTIONS``):
        MODEL_PATH: a model folder (``config.json``, weights, tokenizer) used for every model
            id: the request's id is then only stored, as with a dedicated endpoint.
        MODEL_PATHS: ``{model_id: folder}``; ids not listed come from the cache.
        CACHE_DIR: the Hugging Face cache to look ids up in (default: the Hub's own,
            ``HF_HUB_CACHE`` or ``HF_HOME``).
        BATCH_SIZE: texts per call and per forward pass (default 16).
        DEVICE: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, or ``"auto"`` (CUDA when
            present, else the CPU).
        THREADS: PyTorch threads in each process (default: CPUs / PROCESSES, at least 1).
        PROCESSES: processes expected to run a model at once on this machine (default: the
            CPU count, Celery's default ``--concurrency``); only used to compute THREADS.
        MAX_LENGTH: truncate inputs to this many tokens (default: the model's own limit).
    """

    supports_batch = True
    #: One forward pass at a time: more calls would only share the same CPUs.
    calls_in_flight = 1
    #: A key's ``REVISION`` picks that revision of a model in the local cache.
    supports_revision = True

    def __init__(
        self,
        *,
        MODEL_PATH=None,
        MODEL_PATHS=None,
        CACHE_DIR=None,
        BATCH_SIZE=16,
        DEVICE="cpu",
        THREADS=None,
        PROCESSES=None,
        MAX_LENGTH=None,
        **options,
    ):
        super().__init__(**options)
        self.model_path = self._folder("MODEL_PATH", MODEL_PATH)
        self.model_paths = self._mapping(MODEL_PATHS)
        self.cache_dir = self._folder("CACHE_DIR", CACHE_DIR)
        self.max_batch_size = positive_number(self.alias, "BATCH_SIZE", BATCH_SIZE, int)
        if not isinstance(DEVICE, str) or not DEVICE_RE.fullmatch(DEVICE):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: DEVICE must be 'cpu', 'cuda', 'cuda:N' "
                f"or 'auto', not {DEVICE!r}."
            )
        self.device = DEVICE
        processes = (
            cpu_count()
            if PROCESSES is None
            else positive_number(self.alias, "PROCESSES", PROCESSES, int)
        )
        self.threads = (
            max(1, cpu_count() // processes)
            if THREADS is None
            else positive_number(self.alias, "THREADS", THREADS, int)
        )
        self.max_length = (
            None
            if MAX_LENGTH is None
            else positive_number(self.alias, "MAX_LENGTH", MAX_LENGTH, int)
        )
        self._forget()
        _instances.add(self)

    def __repr__(self):
        return f"<local.Backend alias={self.alias!r} device={self.device!r}>"

    def _folder(self, name, value):
        if value is None:
            return None
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: {name} must be a folder path, not {value!r}."
            )
        return Path(value).expanduser()

    def _mapping(self, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: MODEL_PATHS must be a dict of model ids "
                "to folders."
            )
        paths = {}
        for model_id, folder in value.items():
            try:
                validate_model_id(model_id)
            except InvalidInputError:
                raise TextClassConfigurationError(
                    f"TEXTCLASS backend {self.alias!r}: MODEL_PATHS key {model_id!r} is not a "
                    "Hugging Face repository id (owner/name)."
                ) from None
            paths[model_id] = self._folder(f"MODEL_PATHS[{model_id!r}]", folder)
        return paths

    def _forget(self):
        """Drop every loaded model, with a lock no other thread can be holding."""
        self._lock = threading.Lock()
        self._models = {}
        self._cached_folders = {}

    def close(self):
        """Unload the models (they load again on the next call)."""
        with self._lock:
            self._models = {}
            self._cached_folders = {}

    # --- what the system check reports --------------------------------------------------

    def check(self):
        """``textclass.E050``-``E052``: the extra, the model folders and the device.

        Reads the folders without loading anything; imports torch only when ``DEVICE`` asks
        for CUDA, to ask it whether a device is there.
        """
        missing = missing_packages()
        if missing:
            return [
                checks.Error(
                    f"TEXTCLASS backend {self.alias!r} needs {' and '.join(missing)}, which "
                    "cannot be imported.",
                    hint=f"Install the extra: {INSTALL_HINT}",
                    id="textclass.E050",
                )
            ]
        messages = []
        folders = [("MODEL_PATH", self.model_path)] if self.model_path else []
        folders += [(f"MODEL_PATHS[{key!r}]", path) for key, path in self.model_paths.items()]
        for name, folder in folders:
            problem = folder_problem(folder)
            if problem:
                messages.append(
                    checks.Error(
                        f"TEXTCLASS backend {self.alias!r}: {name} {problem}.",
                        hint="Point it at a folder written by save_pretrained() (config.json, the "
                        "weights and the tokenizer files); nothing is ever downloaded.",
                        id="textclass.E051",
                    )
                )
        if self.device.startswith("cuda"):
            try:
                self._torch_device(importlib.import_module("torch"))
            except TextClassConfigurationError as exc:
                messages.append(
                    checks.Error(
                        str(exc),
                        hint="Set DEVICE to 'cpu' (or 'auto').",
                        id="textclass.E052",
                    )
                )
        return messages

    # --- classification -----------------------------------------------------------------

    def classify_texts(
        self, texts, parameters, *, model_id, use_cache, wait_for_model, revision=None
    ):
        """Rank ``texts`` in one forward pass; the cache flags do not apply in process."""
        loaded = self.model_for(model_id, revision)
        options = {
            "top_k": parameters.top_k,
            "batch_size": min(len(texts), self.max_batch_size),
            "truncation": True,
        }
        if loaded.max_length:
            options["max_length"] = loaded.max_length
        if parameters.function_to_apply:
            options["function_to_apply"] = parameters.function_to_apply
        with loaded.lock:
            answers = loaded.pipeline(list(texts), **options)
        return [Ranking.from_objects(answer) for answer in answers]

    def folder_for(self, model_id, revision=None):
        """The folder the model of ``model_id`` is read from.

        ``revision`` (a key's ``REVISION``: a branch or tag the cache has a ref for, or a
        commit it holds) picks that snapshot of the cache; None is ``main``. A configured
        folder (``MODEL_PATH``, ``MODEL_PATHS``) holds one revision: there the revision is
        only a label of the stored requests.

        Raises:
            TextClassConfigurationError: the id is not a repository id, the revision not a
                revision name, or the model (at that revision) is neither configured nor in
                the local cache (the message names where it looked).
        """
        if self.model_path:
            return self.model_path
        if model_id in self.model_paths:
            return self.model_paths[model_id]
        try:
            validate_model_id(model_id)
        except InvalidInputError:
            # Never a path: "../x" or "/srv/x" must not pick a folder of the worker's disk.
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: the model id is not a Hugging Face "
                "repository id (owner/name)."
            ) from None
        if revision is not None and not catalog.is_revision(revision):
            # A stored row's revision must not steer the lookup out of the model's snapshots.
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: the revision is not a branch, tag or "
                "commit name."
            )
        folder = self._cached_folders.get((model_id, revision))
        if folder:
            return folder
        hub = import_extra("huggingface_hub")
        cache = self.cache_dir or hub.constants.HF_HUB_CACHE
        at = "" if revision is None else f" at revision {revision!r}"
        try:
            folder = Path(
                hub.snapshot_download(
                    model_id, cache_dir=self.cache_dir, revision=revision, local_files_only=True
                )
            )
        except (OSError, ValueError) as exc:
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: model {model_id!r}{at} is not in "
                f"MODEL_PATHS and not in the Hugging Face cache at {cache} "
                f"({type(exc).__name__}); nothing is downloaded at run time: put it there "
                "first (huggingface-cli download, or save_pretrained() and MODEL_PATHS)."
            ) from exc
        self._cached_folders[(model_id, revision)] = folder
        return folder

    def model_for(self, model_id, revision=None):
        """The loaded model that serves ``model_id`` (at ``revision``) here, loading it once."""
        folder = self.folder_for(model_id, revision)
        with self._lock:
            loaded = self._models.get(folder)
            if loaded is None:
                loaded = self._models[folder] = self._load(folder)
            return loaded

    def _load(self, folder):
        started = time.monotonic()
        problem = folder_problem(folder)
        if problem:
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: the model folder {problem}."
            )
        torch = import_extra("torch")
        transformers = import_extra("transformers")
        device = self._torch_device(torch)
        torch.set_num_threads(self.threads)
        bars = transformers.utils.logging
        bars_were_on = bars.is_progress_bar_enabled()
        bars.disable_progress_bar()  # a worker's log is no terminal
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False
            )
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError) as exc:
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: cannot load a text-classification model "
                f"from {folder}: {exc}"
            ) from exc
        finally:
            if bars_were_on:
                bars.enable_progress_bar()
        model.eval()
        pipeline = transformers.pipeline(
            "text-classification", model=model, tokenizer=tokenizer, device=device
        )
        loaded = LoadedModel(pipeline, self._token_limit(tokenizer, model))
        logger.info(
            "Backend %r loaded the model in %s on %s with %d thread(s), process %d, in %.1f s",
            self.alias,
            folder,
            device,
            self.threads,
            os.getpid(),
            time.monotonic() - started,
        )
        return loaded

    def _torch_device(self, torch):
        """``DEVICE`` as a torch device.

        Raises:
            TextClassConfigurationError: CUDA is asked for and torch sees no such device.
        """
        # device_count(), not is_available(): it asks NVML and leaves CUDA uninitialised, so
        # the check may run in the parent of a prefork pool (Celery's Django fix-up runs the
        # checks there) without spoiling CUDA for the children.
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.device_count() else "cpu")
        if self.device == "cpu":
            return torch.device("cpu")
        index = int(self.device.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: DEVICE is {self.device!r}, but torch sees "
                f"{count} CUDA device(s) (torch {torch.__version__}; a CPU-only build sees none)."
            )
        return torch.device(self.device)

    def _token_limit(self, tokenizer, model):
        """Most tokens one input may have (None when nothing says).

        The smallest of what the tokenizer, the model's position embeddings and
        ``MAX_LENGTH`` allow.
        """
        limits = [
            self.max_length,
            getattr(model.config, "max_position_embeddings", None),
            tokenizer.model_max_length,
        ]
        limits = [limit for limit in limits if isinstance(limit, int) and 0 < limit < NO_LIMIT]
        return min(limits, default=None)


class LoadedModel:
    """One process's pipeline for one folder, with the lock that keeps its calls one at a time.

    Calls from several threads at once would only share the same CPU threads.
    """

    def __init__(self, pipeline, max_length):
        self.pipeline = pipeline
        self.max_length = max_length
        self.lock = threading.Lock()


def missing_packages():
    """The packages of the ``local`` extra that cannot be imported (none imported here)."""
    missing = []
    for name in EXTRA_PACKAGES:
        try:
            # None also when sys.modules holds None for it (an import that is refused).
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def import_extra(name):
    """Import a package of the ``local`` extra.

    Raises:
        TextClassConfigurationError: it is not installed; the message says how to install it.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise TextClassConfigurationError(
            f"The local model backend needs {name}: {INSTALL_HINT}"
        ) from exc


def folder_problem(folder):
    """What keeps ``folder`` from being a model folder, or None when it looks like one."""
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not (folder / "config.json").is_file():
        return f"{folder} has no config.json"
    return None


def _forget_after_fork():
    # A child of a prefork pool must load its own model: the parent's threads and locks
    # are not in the child, and a lock held by one of them at the fork would never open.
    for backend in list(_instances):
        backend._forget()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_after_fork)
