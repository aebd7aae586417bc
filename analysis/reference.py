"""The original experiments' numbers (from the protocol, ``docs/protocol.md``), printed beside ours.

Copied here rather than parsed so a fresh clone without the shared folder still prints them. Scores in
percent, as the original reported them.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

# IMDB-1k, dev accuracy, best of 50 random-search runs per row. Keyed by (objective, pretraining epochs);
# the original used the vectors objective.
IMDB_REFERENCE_EXPERIMENT = "lmao-imdb-1k"
IMDB_LABEL = "original: best of 50 random-search runs (%)"
IMDB_NOTE = ("*original* is the best of 50 random-search runs per row, a maximum over configurations: it is "
             "not comparable to a mean over seeds (our *best (%)* is the closest, and is a maximum over far "
             "fewer trials).")
IMDB_SPLIT = (1000, 10000)  # train / dev docs of the protocol's split
IMDB: Dict[Tuple[Optional[str], float], float] = {
    (None, 0.0): 86.8,
    ("vectors", 1.0): 87.5,
    ("vectors", 2.0): 86.5,
    ("vectors", 3.0): 86.5,
}

# OntoNotes NER, dev F per fine-tuning epoch, plus the best epoch.
NER_REFERENCE_EXPERIMENT = "ontonotes-ner"
NER_COLUMNS: List[str] = ["baseline", "50M words", "100M words", "T 50M"]
NER: Dict[str, Dict[str, float]] = {
    "1": {"baseline": 78.3, "50M words": 80.7, "100M words": 80.8, "T 50M": 80.4},
    "2": {"baseline": 81.4, "50M words": 82.6, "100M words": 82.9, "T 50M": 82.7},
    "5": {"baseline": 83.7, "50M words": 84.5, "100M words": 84.8, "T 50M": 84.6},
    "10": {"baseline": 84.7, "50M words": 85.2, "100M words": 85.6, "T 50M": 85.4},
    "best": {"baseline": 85.5, "50M words": 85.6, "100M words": 85.8, "T 50M": 85.7},
}
NER_EPOCHS = [1, 2, 5, 10]
SOURCE_NOTE = ("Columns marked *original* are the original LMAO experiments' numbers as given in the "
               "protocol (`docs/protocol.md`), not produced here.")

# Points on the frontier plot's size axis that were not measured here (annotations, never data): the
# original's best models, whose 300-d GloVe table (en_vectors_web_lg, about 1.1M rows) alone is
# 1.1M x 300 x 4 bytes, and a DistilBERT classifier (66M parameters in float32, Sanh et al. 2019).
# (label, size in MB, accuracy in % or None)
SIZE_REFERENCES: List[Tuple[str, float, Optional[float]]] = [
    ("original, no pretraining: best of 50 runs, 1.1M x 300-d GloVe table, 5000 dev reviews", 1.1e6 * 300 * 4 / 1e6,
     86.8),
    ("original, LMAO 1 epoch: best of 50 runs, same table", 1.1e6 * 300 * 4 / 1e6, 87.5),
    ("DistilBERT, 66M float32 parameters: not run here", 66e6 * 4 / 1e6, None),
]
