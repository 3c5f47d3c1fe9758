"""An embedding pipeline for a large image collection: DataLoader in, memmap out, resumable.

The shape of every production embedding job:

1. a ``torch.utils.data.DataLoader`` decodes and preprocesses images in worker
   processes (``num_workers``), batches them, and on a GPU copies them into
   page-locked memory (``pin_memory``) so the host→device copy overlaps compute;
2. the model runs under ``torch.autocast`` (bf16 where the device supports it,
   else fp16 on CUDA; fp32 on CPU by default) with gradients off; a small model on
   CPU runs on one torch thread (the DataLoader workers need the other cores, and spare
   intra-op threads only spin-wait on a busy machine);
3. each batch of embeddings is written straight into a ``.npy`` file opened as a
   numpy memmap (so the collection never has to fit in RAM), and only *after*
   the rows are flushed is a small ``.progress.json`` updated atomically;
4. after an interruption (crash, pre-emption, ``kill -9``) the same call resumes
   at the first batch that was not committed, and the finished file is identical
   to an uninterrupted run's.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..env import inference_threads
from ..errors import MMCourseError
from ..validate import integer, positive_int

__all__ = [
    "PipelineConfig", "PipelineResult", "SceneImages", "ImageFiles", "image_to_tensor",
    "embed_dataset", "embed_plain_loop", "load_embeddings", "read_progress", "progress_path",
    "resolve_precision", "model_fingerprint", "data_fingerprint", "ProgressFileError",
]

_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_STORE_DTYPES = ("float32", "float16")


@dataclass
class PipelineConfig:
    """How to run an embedding job."""

    batch_size: int = 64  # images per forward pass (also the commit unit for resume)
    num_workers: int = 2  # DataLoader worker processes decoding images; 0 = in the main process
    pin_memory: bool | None = None  # page-locked host batches; None = on exactly when the device is CUDA
    precision: str = "auto"  # "auto" (bf16 or fp16 on CUDA, fp32 elsewhere), "fp32", "bf16", "fp16"
    store_dtype: str = "float32"  # dtype of the embeddings on disk ("float16" halves the file)
    normalize: bool = True  # L2-normalise each embedding before writing it
    prefetch_factor: int = 2  # batches each worker prepares ahead (only with num_workers > 0)
    progress: bool = True  # show a tqdm bar with images/s

    def __post_init__(self):
        for name in ("batch_size", "prefetch_factor"):
            positive_int(getattr(self, name), name)
        integer(self.num_workers, "num_workers", minimum=0)
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if self.store_dtype not in _STORE_DTYPES:
            raise ValueError(f"store_dtype must be one of {_STORE_DTYPES}, got {self.store_dtype!r}")


@dataclass
class PipelineResult:
    """What one call of :func:`embed_dataset` did."""

    path: pathlib.Path  # the .npy file (np.load(path, mmap_mode="r") reads it)
    rows: int  # images in the collection
    dim: int  # embedding size
    resumed_from: int  # rows already on disk when this call started (0 = fresh run)
    embedded: int  # rows this call computed
    seconds: float  # wall-clock time of this call's loop
    complete: bool  # every row written

    @property
    def images_per_s(self) -> float:
        """Throughput of this call (rows it embedded per second)."""
        return self.embedded / self.seconds if self.seconds > 0 else float("nan")


# ----------------------------------------------------------------------------- datasets

def image_to_tensor(image) -> torch.Tensor:
    """PIL RGB image → float tensor ``(3, H, W)`` in [0, 1] (what ``to_tensor`` does)."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)  # (3, H, W)


class SceneImages(torch.utils.data.Dataset):
    """``n`` procedurally drawn scenes, generated lazily: item ``i`` depends only on ``(seed, i)``.

    Drawing happens in ``__getitem__``, i.e. inside the DataLoader's workers, like
    decoding JPEGs would in a real collection.
    """

    def __init__(self, n: int, seed: int = 0, size: int = 64, transform: Callable | None = image_to_tensor):
        positive_int(n, "n")
        self.n, self.seed, self.size, self.transform = n, seed, size, transform

    def __len__(self) -> int:
        return self.n

    def fingerprint(self) -> str:
        """What the items depend on (see :func:`data_fingerprint`)."""
        return f"n={self.n} seed={self.seed} size={self.size} transform={_callable_name(self.transform)}"

    def __getitem__(self, i: int):
        from ..data.shapes import ALL_COMBOS, draw_scene

        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} scenes")
        rng = np.random.default_rng([self.seed, i])
        combo = ALL_COMBOS[rng.integers(len(ALL_COMBOS))]
        image = draw_scene([combo], rng, self.size)
        return self.transform(image) if self.transform else image


class ImageFiles(torch.utils.data.Dataset):
    """Images on disk (any format PIL reads), opened and transformed in the workers."""

    def __init__(self, paths: Sequence[str | os.PathLike], transform: Callable | None = image_to_tensor):
        self.paths = [pathlib.Path(p) for p in paths]
        if not self.paths:
            raise ValueError("expected at least one image path, got none")
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} image file(s) not found, e.g. {missing[0]!r}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def fingerprint(self) -> str:
        """SHA-256 of every file's bytes, in order, and the transform's name."""
        digest = hashlib.sha256(_callable_name(self.transform).encode())
        for path in self.paths:
            digest.update(f"{len(path.name)}:{path.name}".encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            image = image.convert("RGB")
        return self.transform(image) if self.transform else image


# ----------------------------------------------------------------------------- helpers

def _callable_name(fn) -> str:
    return "none" if fn is None else f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def progress_path(path: str | os.PathLike) -> pathlib.Path:
    """The small JSON file that records how many rows of ``path`` are committed."""
    path = pathlib.Path(path)
    return path.with_name(path.name + ".progress.json")


class ProgressFileError(MMCourseError, ValueError):
    """A ``.progress.json`` file is unreadable or inconsistent with its embedding file."""


_PROGRESS_KEYS = {"rows": int, "batch_size": int, "store_dtype": str, "normalize": bool, "model": str, "data": str,
                  "dim": int, "done": int}


def read_progress(path: str | os.PathLike) -> dict | None:
    """The committed state of an embedding file, or ``None`` if no job ever committed a batch.

    Raises :class:`ProgressFileError` (saying to delete the file) if it is not the JSON this
    module writes: every key present with its type, ``0 <= done <= rows``, ``dim >= 1``.
    """
    ppath = progress_path(path)
    if not ppath.is_file():
        return None
    fix = f"delete {ppath.name} (and {pathlib.Path(path).name}) to start the job again"
    try:
        state = json.loads(ppath.read_text())
    except (OSError, ValueError) as err:
        raise ProgressFileError(f"{ppath} is not valid JSON ({err}); {fix}") from err
    if not isinstance(state, dict) or set(state) != set(_PROGRESS_KEYS):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ProgressFileError(f"{ppath} is not a progress file of this pipeline (keys {got}, expected "
                                f"{sorted(_PROGRESS_KEYS)}); {fix}")
    for key, kind in _PROGRESS_KEYS.items():
        value = state[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProgressFileError(f"{ppath}: {key} must be {kind.__name__}, got {value!r}; {fix}")
    if not (0 <= state["done"] <= state["rows"] and state["rows"] >= 1 and state["dim"] >= 1
            and state["batch_size"] >= 1):
        raise ProgressFileError(f"{ppath} is inconsistent (done={state['done']}, rows={state['rows']}, "
                                f"dim={state['dim']}, batch_size={state['batch_size']}); {fix}")
    return state


def _write_progress(path: pathlib.Path, state: dict) -> None:
    ppath = progress_path(path)
    tmp = ppath.with_name(f"{ppath.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        handle.write(json.dumps(state))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, ppath)  # atomic: readers see the old or the new state, never half of one


# ----------------------------------------------------------------------------- what a job is

def model_fingerprint(model) -> str:
    """SHA-256 naming a model: its type and every weight and buffer of the torch modules it holds.

    ``model`` is a module, a bound method of one (``tower.encode_image``), an embedder object
    holding modules, or a plain function (then its code and the modules in its closure count).
    Two models with different weights get different fingerprints, so a job never resumes
    with rows of another model.
    """
    digest = hashlib.sha256()
    target = getattr(model, "__self__", None)
    digest.update(f"{type(model).__qualname__}:{getattr(model, '__qualname__', '')}".encode())
    code = getattr(getattr(model, "__func__", model), "__code__", None)
    if code is not None:  # a function or a method: its code is part of what computes the rows
        digest.update(code.co_code + repr(code.co_consts).encode())
    holders = [model] + ([target] if target is not None else [])
    for cell in getattr(getattr(model, "__func__", model), "__closure__", None) or ():
        try:
            holders.append(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    modules = []
    for holder in holders:
        if isinstance(holder, torch.nn.Module):
            modules.append(holder)
        elif not isinstance(holder, (str, bytes, int, float)) and hasattr(holder, "__dict__"):
            modules.extend(v for v in vars(holder).values() if isinstance(v, torch.nn.Module))
    for module in modules:
        for name, tensor in module.state_dict().items():
            t = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def data_fingerprint(dataset) -> str:
    """SHA-256 naming a collection: ``dataset.fingerprint()`` if it has one (the datasets here
    do, cheaply), else a hash of every item (one extra pass over the data)."""
    if hasattr(dataset, "fingerprint"):
        return hashlib.sha256(f"{type(dataset).__qualname__}:{dataset.fingerprint()}".encode()).hexdigest()
    digest = hashlib.sha256(f"{type(dataset).__qualname__}:{len(dataset)}".encode())
    for i in range(len(dataset)):
        digest.update(_item_bytes(dataset[i]))
    return digest.hexdigest()


def _item_bytes(item) -> bytes:
    if isinstance(item, torch.Tensor):
        t = item.detach().to("cpu").contiguous()
        return f"{tuple(t.shape)}{t.dtype}".encode() + (t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    if isinstance(item, np.ndarray):
        return f"{item.shape}{item.dtype}".encode() + np.ascontiguousarray(item).tobytes()
    if hasattr(item, "tobytes") and hasattr(item, "mode"):  # a PIL image
        return f"{item.mode}{item.size}".encode() + item.tobytes()
    if isinstance(item, (tuple, list)):
        return b"(" + b",".join(_item_bytes(x) for x in item) + b")"
    return repr(item).encode()


def resolve_precision(precision: str, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None`` = plain fp32)."""
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    kind = torch.device(device).type
    if precision == "fp32":
        return None
    if precision == "auto":
        if kind != "cuda":
            return None  # CPU bf16 is only faster on CPUs with AMX/AVX512-BF16; opt in with "bf16"
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and kind == "cpu":
        raise ValueError("fp16 autocast is for GPUs; on CPU use precision='bf16' or 'fp32'")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _autocast(device: str | torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def _collate(items):
    """Stack tensors; keep anything else (e.g. PIL images for a processor) as a list."""
    if isinstance(items[0], torch.Tensor):
        return torch.stack(items)  # (B, ...)
    return list(items)


def _embed_batch(embed: Callable, batch, device, dtype, normalize: bool) -> np.ndarray:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
    with torch.inference_mode(), _autocast(device, dtype):
        out = embed(batch)
    out = torch.as_tensor(out).float()  # (B, D)
    if out.ndim != 2:
        raise ValueError(f"the model must return embeddings of shape (batch, dim), got {tuple(out.shape)}")
    if normalize:
        out = torch.nn.functional.normalize(out, dim=-1)
    return out.cpu().numpy()


def _modules_of(model) -> list:
    """The model, a bound method's owner and their attributes: where the torch modules are."""
    holders = [model, getattr(model, "__self__", None)]
    return holders + [v for h in holders if h is not None and hasattr(h, "__dict__") for v in vars(h).values()]


def _embed_callable(model) -> Callable:
    if hasattr(model, "embed_images") and not isinstance(model, torch.nn.Module):
        return model.embed_images  # a course/hub embedder
    if not callable(model):
        raise TypeError(f"model must be a torch.nn.Module, a callable or an embedder with embed_images; "
                        f"got {type(model).__name__}")
    return model


# ----------------------------------------------------------------------------- the job

def embed_dataset(
    dataset: torch.utils.data.Dataset,
    model: torch.nn.Module | Callable,
    path: str | os.PathLike,
    config: PipelineConfig | None = None,
    *,
    device: str | torch.device | None = None,
    resume: bool = True,
    collate_fn: Callable | None = None,
    max_batches: int | None = None,
) -> PipelineResult:
    """Embed every item of ``dataset`` with ``model`` into the ``.npy`` file ``path``, resumably.

    ``model(batch)`` must return ``(B, D)`` embeddings (a module, any callable, or an
    embedder whose ``embed_images`` is used). Batches are committed in order; if
    ``path`` holds a partial run of the same job (same rows, batch size, dtype and
    normalisation, the same model weights — :func:`model_fingerprint` — and the same data —
    :func:`data_fingerprint`) and ``resume`` is true, the job continues after the last committed batch, otherwise it
    starts over. ``max_batches`` stops after that many batches (a deliberate interruption,
    for demonstrations). Returns a :class:`PipelineResult`; the embeddings are read with
    :func:`load_embeddings`.
    """
    from ..env import get_device

    config = config or PipelineConfig()
    path = pathlib.Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"path must end in .npy (a numpy file opened as a memmap), got {str(path)!r}")
    positive_int(max_batches, "max_batches", optional=True)
    rows = len(dataset)
    if rows == 0:
        raise ValueError("the dataset is empty: nothing to embed")
    device = str(device or get_device())
    dtype = resolve_precision(config.precision, device)
    embed = _embed_callable(model)
    if isinstance(model, torch.nn.Module):
        model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)

    job = {"rows": rows, "batch_size": config.batch_size, "store_dtype": config.store_dtype,
           "normalize": config.normalize, "model": model_fingerprint(model), "data": data_fingerprint(dataset)}
    state = read_progress(path) if resume else None
    start = 0
    out = None
    if state and all(state[k] == v for k, v in job.items()) and path.is_file():
        start = state["done"]
        try:
            out = np.lib.format.open_memmap(path, mode="r+")
        except (OSError, ValueError):  # not a .npy file: start over
            out = None
        if out is None or out.shape != (rows, state["dim"]) or out.dtype != np.dtype(config.store_dtype):
            start, out = 0, None
    if start >= rows and out is not None:  # already finished
        return PipelineResult(path, rows, int(out.shape[1]), rows, 0, 0.0, True)
    if start == 0:
        progress_path(path).unlink(missing_ok=True)

    indices = range(start, rows)
    subset = torch.utils.data.Subset(dataset, indices)
    pin = (torch.device(device).type == "cuda") if config.pin_memory is None else config.pin_memory
    loader = torch.utils.data.DataLoader(
        subset, batch_size=config.batch_size, shuffle=False, num_workers=config.num_workers,
        pin_memory=pin, collate_fn=collate_fn or _collate,
        prefetch_factor=config.prefetch_factor if config.num_workers > 0 else None,
        persistent_workers=False,
    )
    from tqdm.auto import tqdm

    bar = tqdm(total=rows, initial=start, desc="embedding", unit="img", disable=not config.progress,
               leave=False, smoothing=0.1)
    done, t0 = start, time.perf_counter()
    try:
        with inference_threads(_modules_of(model), device):
            for b, batch in enumerate(loader):
                if max_batches is not None and b >= max_batches:
                    break
                emb = _embed_batch(embed, batch, device, dtype, config.normalize)  # (B, D)
                if out is None:  # first batch of a fresh job: now we know the dim
                    out = np.lib.format.open_memmap(path, mode="w+", dtype=config.store_dtype,
                                                    shape=(rows, emb.shape[1]))
                if emb.shape != (min(config.batch_size, rows - done), out.shape[1]):
                    raise ValueError(f"model returned {emb.shape} for a batch of {rows - done} left; "
                                     f"expected ({config.batch_size}, {out.shape[1]})")
                out[done:done + len(emb)] = emb
                out.flush()  # rows reach the file before the progress says they are there
                done += len(emb)
                _write_progress(path, {**job, "dim": int(out.shape[1]), "done": done})
                bar.update(len(emb))
                bar.set_postfix(img_s=f"{(done - start) / max(time.perf_counter() - t0, 1e-9):.0f}")
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    return PipelineResult(path, rows, int(out.shape[1]), start, done - start, seconds, done == rows)


def load_embeddings(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """The finished embeddings ``(N, D)``; refuses a job that has not finished."""
    path = pathlib.Path(path)
    state = read_progress(path)
    if state is None or not path.is_file():
        raise FileNotFoundError(f"no embedding job found at {str(path)!r}")
    if state["done"] < state["rows"]:
        raise ValueError(f"{path.name} is incomplete ({state['done']} of {state['rows']} rows); "
                         f"call embed_dataset again with the same arguments to resume")
    return np.load(path, mmap_mode="r" if mmap else None)


def embed_plain_loop(images: Sequence[Any] | torch.utils.data.Dataset, model, *, batch_size: int = 64,
                     device: str | torch.device | None = None, normalize: bool = True) -> np.ndarray:
    """The reference: one process, no workers, no autocast, everything kept in RAM."""
    from ..env import get_device

    device = str(device or get_device())
    embed = _embed_callable(model)
    if isinstance(model, torch.nn.Module):
        model.eval()
    chunks = []
    with inference_threads(_modules_of(model), device):
        for i in range(0, len(images), batch_size):
            batch = _collate([images[j] for j in range(i, min(i + batch_size, len(images)))])
            chunks.append(_embed_batch(embed, batch, device, None, normalize))  # (B, D)
    return np.concatenate(chunks)  # (N, D)
