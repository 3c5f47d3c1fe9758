"""``load_model(name)``: one loader for every model in the course, both worlds.

Names ``load_model`` understands:

- **course checkpoints** (offline, trained on first use and cached under ``cache_dir()``):
  ``"course/clip-shapes"`` (image–text), ``"course/clap-sounds"`` (audio–text),
  ``"course/colpali-pages"`` (documents);
- **transformers**, a hub id or a local folder saved with ``save_pretrained``, picked by
  the folder's ``config.json`` ``model_type``: ``clip`` (``CLIPModel``), ``siglip``
  (``SiglipModel``), ``vision-text-dual-encoder`` (``VisionTextDualEncoderModel``),
  ``clap`` (``ClapModel``), ``colpali`` (``ColPaliForRetrieval``, e.g. ``"vidore/colpali-v1.3-hf"``)
  and ``colqwen2`` (``ColQwen2ForRetrieval``, e.g. ``"vidore/colqwen2-v1.0-hf"``) — transformers'
  own classes, no colpali-engine needed. The embedder's ``name`` is the name you passed.
  Hub ids are resolved by :func:`mmcourse.models.hub.access.resolve_hub_weights`: a snapshot counts
  as cached only with its weights; without them and without a network (the probe honours
  ``HTTPS_PROXY`` and ``HF_ENDPOINT``) they fail within seconds with
  :class:`~mmcourse.errors.WeightsUnavailableError` (never hang);
- **open_clip**, prefixed with ``open_clip:``:

  - ``"open_clip:ViT-B-32/laion2b_s34b_b79k"`` — architecture / pretrained tag;
  - ``"open_clip:ViT-B-32"`` — architecture only, random weights (any config open_clip
    knows, including your own registered with ``open_clip.add_model_config(path)``);
  - ``load_model("open_clip:my-config", pretrained="model.pt")`` — a local checkpoint file
    (``pretrained=`` also accepts a tag);
  - ``"open_clip:hf-hub:org/repo"`` and ``"open_clip:local-dir:/path"`` — open_clip's own
    schemas (a folder with ``open_clip_config.json`` is also recognised without the prefix).

Every result is an :class:`~mmcourse.models.embedder.Embedder`. Notebooks choose between
worlds with ``mmcourse.pretrained_enabled()`` (``MMCOURSE_PRETRAINED=1``); ``load_model``
itself always loads exactly the name it is given.
"""
from __future__ import annotations

import importlib
import json
import os
import pathlib

from ..errors import MMCourseError
from .embedder import Embedder

__all__ = ["load_model", "list_models", "COURSE_MODELS", "HUB_MODELS"]

# course checkpoint name -> module whose load(device=None) returns an Embedder
COURSE_MODELS: dict[str, str] = {
    "course/clip-shapes": "mmcourse.models.course.clip",
    "course/clap-sounds": "mmcourse.models.course.clap",
    "course/colpali-pages": "mmcourse.models.course.colpali",
}
# the hub checkpoints the notebooks use in the pretrained world (any other id works too)
HUB_MODELS: tuple[str, ...] = (
    "openai/clip-vit-base-patch32",
    "google/siglip-base-patch16-224",
    "open_clip:ViT-B-32/laion2b_s34b_b79k",
    "laion/clap-htsat-unfused",
    "vidore/colpali-v1.3-hf",
    "vidore/colqwen2-v1.0-hf",
)
# transformers config.model_type -> (module, what it is)
MODEL_TYPES: dict[str, str] = {
    "clip": "mmcourse.models.hub.hf_dual",
    "siglip": "mmcourse.models.hub.hf_dual",
    "vision-text-dual-encoder": "mmcourse.models.hub.hf_dual",
    "clap": "mmcourse.models.hub.hf_clap",
    "colpali": "mmcourse.models.hub.hf_colpali",
    "colqwen2": "mmcourse.models.hub.hf_colpali",
}
OPEN_CLIP_PREFIX = "open_clip:"


def list_models() -> list[str]:
    """Names ``load_model`` knows by heart: the course checkpoints, then the hub models the course uses."""
    return list(COURSE_MODELS) + list(HUB_MODELS)


def _import_backend(module: str, name: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:  # the backend exists but one of its own imports is missing
            raise
        raise MMCourseError(
            f"{name!r} is loaded by the module {module}, which is not part of this copy of mmcourse yet "
            f"(update mmcourse, or choose another model: {', '.join(list_models())})"
        ) from None


def _unknown(name: str) -> ValueError:
    return ValueError(
        f"unknown model {name!r}. Known names: {', '.join(list_models())}; also any transformers "
        "CLIP / SigLIP / VisionTextDualEncoder / CLAP / ColPali / ColQwen2 hub id or local folder, and "
        "'open_clip:<architecture>[/<pretrained tag>]'."
    )


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not any(c.isspace() for c in name) and not name.startswith((".", "~"))


def _load_transformers(name: str, source: str, device, **kwargs) -> Embedder:
    """``source`` is a local folder, or (online, not cached) a hub id whose config we fetch alone."""
    if os.path.isdir(source):
        config_path = pathlib.Path(source) / "config.json"
        if not config_path.is_file():
            raise ValueError(f"{name!r}: the folder {source} has no config.json; is it a transformers model "
                             "saved with save_pretrained?")
    else:
        from huggingface_hub import hf_hub_download

        config_path = pathlib.Path(hf_hub_download(source, "config.json"))
    config = json.loads(config_path.read_text())
    model_type = config.get("model_type")
    if config.get("text_pooling") == "mean" and os.path.isdir(source):  # a saved course dual encoder
        if kwargs:
            raise TypeError(f"{name!r} is a saved course dual encoder; it takes no loading options, "
                            f"got {', '.join(sorted(kwargs))}")
        course = _import_backend(COURSE_MODELS["course/clip-shapes"], name)
        return course.load_folder(source, device=device, name=name)
    if model_type not in MODEL_TYPES:
        raise ValueError(f"{name!r}: transformers model_type {model_type!r} is not supported by load_model; "
                         f"supported: {', '.join(MODEL_TYPES)}")
    backend = _import_backend(MODEL_TYPES[model_type], name)
    # contract: load(path_or_id, device=None, name=None, **kwargs); name is what the learner asked for
    return backend.load(source, device=device, name=name, **kwargs)


def _colpali_engine_id(name: str) -> str | None:
    """The transformers conversion of a colpali-engine checkpoint id (``vidore/x`` → ``vidore/x-hf``), or None."""
    if name.lower().startswith("vidore/") and not name.lower().endswith("-hf"):
        return f"{name}-hf"
    return None


def load_model(name: str, device: str | None = None, **kwargs) -> Embedder:
    """Load a model by name and return its :class:`Embedder` (see the module docstring for names).

    ``device`` defaults to :func:`mmcourse.get_device`; extra keyword arguments go to the
    backend (e.g. ``pretrained=`` for open_clip).
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    if not name.strip():
        raise _unknown(name)
    if device is None:
        from ..env import get_device

        device = get_device()

    if name in COURSE_MODELS:
        return _import_backend(COURSE_MODELS[name], name).load(device=device, **kwargs)
    if name.startswith("course/"):
        raise _unknown(name)
    if name.startswith(OPEN_CLIP_PREFIX):
        from .hub import openclip_backend

        return openclip_backend.load(name[len(OPEN_CLIP_PREFIX):], device=device, **kwargs)

    local = os.path.expanduser(name)
    if os.path.isdir(local):
        if os.path.isfile(os.path.join(local, "open_clip_config.json")):
            from .hub import openclip_backend

            return openclip_backend.load(f"local-dir:{local}", device=device, name=name, **kwargs)
        return _load_transformers(name, local, device, **kwargs)
    converted = _colpali_engine_id(name)
    if converted:
        raise MMCourseError(
            f"{name!r} is a colpali-engine checkpoint (an adapter for colpali-engine's own classes, which "
            f"mmcourse does not use). transformers loads the converted copies published with an -hf suffix: "
            f"mmcourse.load_model({converted!r}), e.g. 'vidore/colpali-v1.3-hf' (ColPaliForRetrieval) or "
            f"'vidore/colqwen2-v1.0-hf' (ColQwen2ForRetrieval).")
    if _looks_like_hub_id(name):
        from .hub.access import resolve_hub_weights

        source = resolve_hub_weights(name)  # cached folder, or the id when online; raises offline within seconds
        return _load_transformers(name, source, device, **kwargs)
    raise _unknown(name)
