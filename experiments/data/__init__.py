"""Corpora in, tokenized spaCy DocBins out. Every reader raises ``InputError`` naming file, line and problem.

May import: ``experiments.common``, ``experiments.storage``.
"""
