"""Interactive playgrounds (ipywidgets), each one call from its notebook, each with a static twin.

- :func:`temperature_playground`: temperature and bias sliders; softmax vs sigmoid matrices (02 losses)
- :func:`zero_shot_playground`: pick an image, edit labels and prompt templates (01 CLIP zero-shot)
- :func:`maxsim_playground`: pick a query token, see its similarity map over a page (06 ColPali)
- :func:`hybrid_search_playground`: fusion-weight slider, ranked thumbnails (07 hybrid search)

Returned from a cell, a playground displays as one MIME bundle with the live widget and a
static PNG; front ends that render widgets show the widget, the others (nbval, nbconvert,
GitHub) the PNG. ``static=True`` / ``MMCOURSE_STATIC_WIDGETS=1`` forces the PNG alone.
"""
from .base import *  # noqa: F401,F403  Playground, static_requested, STATIC_ENV
from .temperature import *  # noqa: F401,F403
from .zero_shot import *  # noqa: F401,F403
from .maxsim import *  # noqa: F401,F403
from .hybrid import *  # noqa: F401,F403
