"""Retrieval: zero-shot classification, similarity, metrics, late interaction, fusion, composition.

One module per concept; everything is re-exported here so notebooks write
``mmcourse.retrieval.recall_at_k`` or ``from mmcourse.retrieval import maxsim``.
"""
from .zero_shot import *  # noqa: F401,F403  zero_shot_classify, similarity, ...
from .metrics import *  # noqa: F401,F403  recall_at_k, ndcg_at_k, mean_average_precision
from .maxsim import *  # noqa: F401,F403  maxsim, maxsim_naive
from .packed_maxsim import *  # noqa: F401,F403  MaxSimIndex (pages packed once, single-query speed)
from .fusion import *  # noqa: F401,F403  weighted fusion, reciprocal rank fusion
from .composition import *  # noqa: F401,F403  composition_hit_rate (embedding arithmetic)
