"""Models, in two worlds behind one :class:`~mmcourse.models.embedder.Embedder` API.

- ``zoo.py``: :func:`mmcourse.load_model`, the one loader for both worlds;
- ``embedder.py``: the ``Embedder`` base class every loaded model is;
- ``hub/``: pretrained checkpoints from the hub (transformers, open_clip, all-MiniLM-L6-v2)
  and the offline guard;
- ``course/``: the course's own checkpoints, trained on first use and cached (one contract);
- ``experiments/``: small models the notebooks train in front of the learner.
"""
