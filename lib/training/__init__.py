"""Training dynamics (issue 13): RSA of one architecture across the checkpoints of a
training run.

- :mod:`lib.training.series` — a checkpoint series as a model source: one network built
  once, each checkpoint loaded into it, RDMs through the extraction engine, cached per
  checkpoint content hash.
- :mod:`lib.training.demo` — the miniature series the demo trains itself, offline.
- :mod:`lib.training.analysis` — RSA over depth × training time, trajectories with
  stimulus-bootstrap CIs, the published ResNet-50 trajectories, verdicts.
- :mod:`lib.training.plots` — the chapter's figures.
- :mod:`lib.training.pipeline` — the chapter's one call: the profile's series -> RDMs.
"""
