"""The pretrained world: hub checkpoints behind the Embedder API, and the offline guard (``access``).

A module here never imports ``mmcourse.models.course`` or ``mmcourse.models.experiments``.
"""
