"""LMAO pretrain-then-finetune experiments built on spaCy.

One obvious place per stage:
- ``experiments.data``: corpora in, tokenized DocBins out (IMDB, CoNLL/IOB, CoNLL-2012, .spacy, Prodigy).
- ``experiments.vectors``: static word vectors for the LMAO objective (gensim -> spaCy vectors).
- ``experiments.objectives``: registered pretraining objectives (the trigram objective lives here).
- ``experiments.pretrain``: the pretraining loop (spaCy's pretraining model + per-epoch checkpoints).
- ``experiments.finetune``: the fine-tuning loop (textcat / NER), evaluated once per epoch.
- ``experiments.trial``: one trial = the above, ending in ``results.json``.
- ``experiments.cli``: the ``lmao`` command line.
"""

__version__ = "0.1.0"
