# Experiment image for the cluster (terraform-gke/, Polyaxon jobs): CUDA runtime, spaCy with its
# CUDA 12 extras (CuPy), and this repo installed, so `lmao trial <experiment dir> ...` runs as-is.
# The same image runs on CPU nodes: spaCy falls back to CPU when no GPU is visible.
# Build and push with `make image` (registry from `terraform output registry_url`).
# CUDA 12 runtime libraries (cuBLAS, cuRAND, NVRTC...) for CuPy; the driver comes from the GKE node.
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    CUPY_CACHE_DIR=/home/lmao/.cupy/kernel_cache

# CuPy's compiled kernels (CUPY_CACHE_DIR, CuPy's default folder for this user, named so it is stated once)
# are not baked in: the build has no GPU and the binaries are compiled for the GPU's architecture. A trial
# with --cache gs://... restores them from <cache>/cupy-kernels/ and uploads new ones
# (experiments/storage/kernel_cache.py), so only the first pod ever compiles them.

# Ubuntu 24.04 images ship a user "ubuntu" with UID 1000, which `useradd --uid 1000` would collide with
# ("UID 1000 is not unique"): it is removed first.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates git \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && if getent passwd ubuntu > /dev/null; then userdel --remove ubuntu; fi \
    && useradd --create-home --uid 1000 lmao \
    && install -d -o lmao -g lmao /home/lmao/.cupy/kernel_cache

WORKDIR /app

# Dependencies first (cached while only the code changes): install the package from its metadata
# with stub modules, then the real code without dependencies.
COPY pyproject.toml README.md ./
RUN mkdir -p experiments analysis lmao \
    && touch experiments/__init__.py analysis/__init__.py lmao/__init__.py \
    && pip install ".[polyaxon]" "spacy[cuda12x]>=3.8,<3.9" \
    && rm -rf experiments analysis lmao

COPY . .
RUN pip install --no-deps . \
    && lmao --help > /dev/null \
    && chown -R lmao:lmao /app

USER lmao
# Batch jobs, not a service: Kubernetes tracks the process, there is nothing to probe.
HEALTHCHECK NONE
CMD ["lmao", "--help"]
