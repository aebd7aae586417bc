"""Many trials: search spaces over trial params (``search_space``), the local Optuna sweep that runs each
trial as a ``lmao trial`` process (``sweep``, ``trial_command``) and fixed campaign designs of settings x
seeds (``campaign``; their summary tables are ``analysis.campaign``). Polyaxon hooks (marking a pruned run
stopped) are passed in by the CLI, never imported.

May import: ``experiments.common``, ``experiments.storage``, ``experiments.data``, ``experiments.training``.
"""
