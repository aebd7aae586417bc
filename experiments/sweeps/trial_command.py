"""The ``lmao trial`` command line, built in one place for everything that starts trials: local sweeps
(``experiments.sweeps.sweep``), campaigns (``experiments.sweeps.campaign``) and the generated Polyaxon files
(``experiments.polyaxon.polyaxonfile``, whose values are Polyaxon's ``{{ name }}`` placeholders).
"""

from __future__ import annotations

import json
from typing import Any, List, Mapping, Optional, Sequence


def trial_args(experiment_dir: Any, out: Any, *, params: Mapping[str, Any], cache: Optional[str] = None,
               meta: Mapping[str, Any] = {}, extra: Sequence[str] = (),
               overrides: Mapping[str, Any] = {}) -> List[str]:
    """``trial EXPERIMENT_DIR --out OUT [--cache C] -P name=value ... --meta key=value ... EXTRA --x.y V``.

    ``overrides`` are spaCy config overrides (``section.key``: value); a value that is not a string is
    passed as JSON, which spaCy parses."""
    args = ["trial", str(experiment_dir), "--out", str(out)]
    if cache:
        args += ["--cache", str(cache)]
    args += [arg for name, value in params.items() for arg in ("-P", f"{name}={value}")]
    args += [arg for key, value in meta.items() for arg in ("--meta", f"{key}={value}")]
    args += list(extra)
    args += [arg for key, value in overrides.items()
             for arg in (f"--{key}", value if isinstance(value, str) else json.dumps(value))]
    return args
