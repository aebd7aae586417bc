"""The ``lmao`` entry point: assembles the command line from ``experiments`` and ``analysis`` and owns
nothing else. ``lmao.cli`` adds to the experiments' commands (:mod:`experiments.cli`: data, vectors, trial,
sweep, polyaxonfile) ``campaign`` (runs a design with ``experiments.sweeps.campaign``, summarizes it with
``analysis.campaign``), ``report`` and ``frontier`` (``analysis.cli``). Nothing imports ``lmao``.

May import: ``experiments.common``, ``experiments.storage``, ``experiments.data``, ``experiments.training``,
``experiments.sweeps``, ``experiments.polyaxon``, ``experiments.cli``, ``analysis``.
"""
