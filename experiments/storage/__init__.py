"""Files and artifacts: atomic local writes and the local cache folder (``fileio``), local and ``gs://``
trees with publish-once semantics (``storage``), the content-keyed pretraining artifact cache (``cache``)
and the shared CuPy kernel cache (``kernel_cache``). Knows nothing of what the files mean.

May import: ``experiments.common``.
"""
