"""Plots the notebooks show: one module per topic, re-exported here."""
from .images import *  # noqa: F401,F403  image grids, similarity heatmaps, galleries, confusion
from .audio import *  # noqa: F401,F403  waveforms, spectrograms
from .documents import *  # noqa: F401,F403  pages, MaxSim maps
from .charts import *  # noqa: F401,F403  loss curves, sigmoid vs softmax, recall vs latency
