"""What a benchmark ran on: CPU model, cores, numpy's BLAS (as threadpoolctl reports it) and any GPU.

The CPU-side ratios depend on them: our trials multiply matrices with numpy's BLAS (``cpu_gemm=numpy``),
spaCy's CLI with thinc's bundled BLIS, and numpy's gain per CPU-second differs from one CPU and BLAS
build to another (OpenBLAS picks its kernels by ``architecture``). Every benchmark prints these lines.

    python benchmarks/machine.py        # the same lines, alone
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any, Dict, List

from experiments.training.results import cpu_model


def cpu_isa() -> str:
    """The vector instruction sets the BLAS kernels care about (from /proc/cpuinfo's flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    return " ".join(flag for flag in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if flag in flags) or "none"


def cpu_limit() -> str:
    """The cgroup v2 CPU quota (a container or pod limit), or 'none'."""
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max", encoding="utf-8").read().split()
    except (OSError, ValueError):
        return "none"
    return "none" if quota == "max" else f"{int(quota) / int(period):g} CPUs"


def blas() -> List[Dict[str, Any]]:
    """numpy's BLAS libraries as threadpoolctl sees them once numpy is loaded (internal_api, version,
    architecture: the kernel set OpenBLAS chose for this CPU)."""
    import numpy  # noqa: F401  (loads the BLAS threadpoolctl inspects)
    from threadpoolctl import threadpool_info

    keys = ("internal_api", "version", "architecture", "threading_layer", "num_threads", "filepath")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info() if lib.get("user_api") == "blas"]


def gpu() -> Dict[str, Any]:
    """The first visible GPU (name, memory, compute capability) through CuPy, or why there is none."""
    try:
        import cupy
    except Exception as err:  # not installed, or its CUDA libraries missing
        return {"present": False, "reason": f"cupy not importable ({type(err).__name__}: {err})"}
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # no driver, no device
        return {"present": False, "reason": f"no CUDA device ({type(err).__name__}: {err})"}
    if count < 1:
        return {"present": False, "reason": "no CUDA device visible"}
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return {"present": True, "count": count, "name": name, "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
            "compute_capability": f"{props['major']}.{props['minor']}", "cupy": cupy.__version__,
            "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion()}


def describe() -> Dict[str, Any]:
    versions = {}
    for package in ("numpy", "spacy", "thinc", "blis", "cupy-cuda12x", "cupy-cuda13x"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu_model(), "isa": cpu_isa(), "cores": os.cpu_count(), "cpu_limit": cpu_limit(), "blas": blas(),
            "versions": versions, "gpu": gpu()}


def lines(info: Dict[str, Any]) -> List[str]:
    out = [f"machine: {info['cpu']} ({info['isa']}), {info['cores']} cores (cgroup limit: {info['cpu_limit']})"]
    for lib in info["blas"] or [{"internal_api": "none found"}]:
        out.append("numpy BLAS (threadpoolctl): " + ", ".join(f"{k} {v}" for k, v in lib.items() if k != "filepath"))
    out.append("spaCy's CLI multiplies with thinc's bundled BLIS (blis " + info["versions"].get("blis", "?") + ")")
    g = info["gpu"]
    out.append(f"GPU: {g['name']}, {g['memory_gib']} GiB, compute {g['compute_capability']}, CuPy {g['cupy']}"
               if g["present"] else f"GPU: none ({g['reason']})")
    return out


if __name__ == "__main__":
    print("\n".join(lines(describe())))
