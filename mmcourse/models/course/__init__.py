"""The course world: checkpoints trained offline on first use, cached and verified (``checkpoints``).

Every course checkpoint module (``clip``, ``clap``, ``colpali``) follows one contract:

- ``NAME``: its ``load_model`` name (``"course/..."``);
- ``Config``: a dataclass of the recipe, with ``version()``, the cache key (its default is fixed:
  a changed recipe gets a new cache folder, the cached default keeps loading);
- ``train(config=None, progress=True, device="cpu")``: trains from scratch, returns the model
  (and processor) and the :class:`~mmcourse.training.History`;
- ``load_folder(folder, device=None, name=NAME) -> Embedder``: a saved folder as an Embedder;
- ``load(device=None, config=None, progress=True) -> Embedder``: from the verified cache, or
  trained now and cached (:func:`~mmcourse.models.course.checkpoints.load_course_checkpoint`).

``binding`` trains new-modality towers against a course model's frozen image space.
"""
