"""The training core: one trial, pretrain then fine-tune, ending in ``results.json``. Trial params and their
defaults (``params``), the spaCy config they fill (``config``), the registered pretraining objectives
(``objectives``), the pretraining loop and its data-parallel workers (``pretrain``, ``parallel``), static
vectors (``vectors``), the fine-tuning loop (``finetune``), the result file (``results``) and the trial that
ties them together (``trial``). An experiment tracker is passed in (``run_trial(tracker_factory=...)``), never
imported: training never imports sweeps, Polyaxon, the CLI or analysis.

May import: ``experiments.common``, ``experiments.storage``, ``experiments.data``.
"""
