"""Small models the notebooks train in front of the learner, in seconds: not checkpoints, not cached.

``tiny_dual`` (notebook 02's loss comparison, notebook 08's distributed training), ``openclip_tiny``
and ``siglip_tiny`` (notebook 03: the libraries' own classes at toy size).
"""
