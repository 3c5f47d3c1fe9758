"""mmcourse: the library behind the multimodal-embeddings course notebooks.

Everything public is listed in ``_PUBLIC`` below and imported lazily, so
``import mmcourse`` stays fast and does not pull in transformers, open_clip,
faiss or librosa until a function that needs them is first used.
"""
from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC = {
    # environment and errors
    "get_device": "mmcourse.env",
    "set_seed": "mmcourse.env",
    "cache_dir": "mmcourse.env",
    "is_offline": "mmcourse.models.hub.access",
    "pretrained_enabled": "mmcourse.env",
    "MMCourseError": "mmcourse.errors",
    "WeightsUnavailableError": "mmcourse.errors",
    # models
    "load_model": "mmcourse.models.zoo",
    "list_models": "mmcourse.models.zoo",
    "is_standin": "mmcourse.models.embedder",
    # training and losses
    "train": "mmcourse.training",  # the function; its module is mmcourse.training
    "History": "mmcourse.training",
    "clip_loss": "mmcourse.losses",
    "siglip_loss": "mmcourse.losses",
    "ClipLoss": "mmcourse.losses",
    "SigLipLoss": "mmcourse.losses",
    "distributed_clip_loss": "mmcourse.losses",
    "distributed_siglip_loss": "mmcourse.losses",
    # retrieval
    "zero_shot_classify": "mmcourse.retrieval",
    "similarity": "mmcourse.retrieval",
    "recall_at_k": "mmcourse.retrieval",
    "top_k_accuracy": "mmcourse.retrieval",
    "ndcg_at_k": "mmcourse.retrieval",
    "mean_average_precision": "mmcourse.retrieval",
    "maxsim": "mmcourse.retrieval",
    "weighted_fusion": "mmcourse.retrieval",
    "reciprocal_rank_fusion": "mmcourse.retrieval",
    # the zero-shot read-outs and the scenes benchmark
    "sigmoid_probs": "mmcourse.retrieval.readout",
    "softmax_probs": "mmcourse.retrieval.readout",
    "evaluate_on_scenes": "mmcourse.scene_benchmark",
    # search
    "MultimodalIndex": "mmcourse.search",
    # measured results (what prose and the README may quote)
    "record": "mmcourse.results",
    "claim": "mmcourse.results",
}

_SUBMODULES = {
    "env", "errors", "data", "models", "training", "losses", "audio", "retrieval",
    "search", "viz", "widgets", "exercises", "scale", "memory", "scene_benchmark", "results",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = import_module(f"mmcourse.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'mmcourse' has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | _SUBMODULES)
