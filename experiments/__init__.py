"""LMAO pretrain-then-finetune experiments built on spaCy, one package per concern (lowest first; each may
import only the ones before it, see its ``__init__``; ``tests/test_imports.py`` checks the graph):

- ``experiments.common``: ``InputError``, progress lines, the CLI style.
- ``experiments.storage``: local files, ``gs://`` trees, the pretraining and kernel caches.
- ``experiments.data``: corpora in, tokenized DocBins out (IMDB, CoNLL/IOB, CoNLL-2012, .spacy, Prodigy).
- ``experiments.training``: one trial: params, config, objectives, pretraining, vectors, fine-tuning, results.
- ``experiments.sweeps``: many trials: search spaces, the Optuna sweep, campaigns.
- ``experiments.polyaxon``: everything that touches Polyaxon or Kubernetes (agent, tuner, polyaxonfiles,
  tracking, the cluster manifests and their checks; the private Polyaxon names it uses are in its
  ``boundary`` table): may import all of the above.
- ``experiments.cli`` (with ``cli_sweep``): the experiments' commands (``python -m experiments``); the full
  ``lmao`` command line is ``lmao.cli``. Nothing in ``experiments`` imports ``analysis`` or ``lmao``.
"""

__version__ = "0.1.0"
