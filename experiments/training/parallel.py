"""Data-parallel pretraining updates: every batch split between N processes, one optimizer step.

spaCy's ``make_update`` runs one batch on one core. Here the batch is cut into ``n_workers`` contiguous
parts of about equal words; this process (rank 0) and ``n_workers - 1`` forked workers each run the
forward and backward pass on their part, the gradients are summed, and this process takes the single
optimizer step of ``make_update``. Nothing big moves between processes: the weights and every worker's
gradients live in shared memory (anonymous ``mmap``, shared across ``fork``), each worker reads the same
corpus and batches itself (the reader and batcher are deterministic), and a step's messages are a few
bytes through a pipe.

Why the sum is the full batch's gradient: the pretraining objectives divide their gradient by the rows
of the prediction (tokens), so a part's gradient is scaled by ``n_part / n_batch`` before backprop; no
layer couples rows of different docs (CNN windows stay within a doc; maxout, layer norm per row). One
thing does couple them: the embedding layers (HashEmbed, StaticVectors) drop whole feature columns with
one mask per batch. Every rank draws those masks from the same per-step generator, so the whole batch
shares them as in one process. Per-element masks (dropout layers, the cloze task's word masking) are
drawn by each rank for its rows (seeded ``seed + rank``). So the weights are reproducible for a fixed
seed and worker count, and match one process in distribution (and exactly, to rounding, without
randomness: ``tests/test_pretrain_parallel.py``).
"""

from __future__ import annotations

import mmap
import multiprocessing
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from thinc.api import Model, Optimizer, fix_random_seed


def loss_weighting(objective: Dict[str, Any]) -> Callable[[int, int], float]:
    """How a part's reported loss counts towards the batch's (``make_update``'s number), by objective.

    Cosine distance is a mean over rows, L2 a sum of squares of row-normalised differences, and the
    characters objective a plain sum.
    """
    arch = objective.get("@architectures", "")
    if arch == "spacy.PretrainCharacters.v1":
        return lambda n, total: 1.0
    if arch in ("spacy.PretrainVectors.v1", "lmao.PretrainTrigramVectors.v1"):
        if objective.get("loss") == "cosine":
            return lambda n, total: n / total
        if objective.get("loss") == "L2":
            return lambda n, total: (n / total) ** 2
    raise ValueError(f"data-parallel pretraining does not know how objective {arch} "
                     f"(loss {objective.get('loss')!r}) normalises its loss: use 1 worker")


BATCH_MASK_LAYERS = ("hashembed", "static_vectors", "embed")  # layers with one dropout mask per batch


class _BatchMasks:
    """The ops of the layers above: 1-D (per-feature) dropout masks come from a generator seeded by the
    step, identical on every rank; everything else is the wrapped ops."""

    def __init__(self, ops, seed: int) -> None:
        self._ops, self._seed = ops, seed
        self._rng = numpy.random.default_rng([seed, 0])

    def start_step(self, step: int) -> None:
        self._rng = numpy.random.default_rng([self._seed, step])

    def __getattr__(self, name: str):
        return getattr(self._ops, name)

    def get_dropout_mask(self, shape, drop):
        if isinstance(shape, int) or len(shape) != 1 or drop is None or drop <= 0 or drop >= 1:
            return self._ops.get_dropout_mask(shape, drop)
        coinflips = self._rng.uniform(0.0, 1.0, shape)  # as thinc's Ops.get_dropout_mask, another generator
        return self._ops.asarray((coinflips >= drop) / (1.0 - drop), dtype="float32")


def split_batch(docs: Sequence, n_parts: int) -> List[Sequence]:
    """Contiguous parts of about equal words; the first part is never empty for a non-empty batch."""
    lengths = numpy.asarray([len(doc) for doc in docs], dtype="int64")
    ends = numpy.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    cuts = [0]
    for k in range(1, n_parts):
        cut = int(numpy.searchsorted(ends, total * k / n_parts, side="left")) + 1
        cuts.append(min(max(cut, cuts[-1], 1), len(docs)))
    cuts.append(len(docs))
    return [docs[cuts[k]:cuts[k + 1]] for k in range(n_parts)]


class _Shared:
    """The model's parameters (and one gradient buffer per worker) as views of shared memory."""

    def __init__(self, model: Model, n_workers: int) -> None:
        self.entries: List[Tuple[Model, str, Tuple[int, ...], int]] = []
        offset = 0
        for node in model.walk():
            for name in node.param_names:
                if node.has_param(name):
                    param = node.get_param(name)
                    if param.dtype != numpy.float32:
                        raise ValueError(f"data-parallel pretraining needs float32 params ({node.name}.{name})")
                    self.entries.append((node, name, param.shape, offset))
                    offset += param.size
        self.size = offset
        self._maps = [mmap.mmap(-1, max(4, 4 * offset)) for _ in range(n_workers)]
        buffers = [numpy.frombuffer(m, dtype="float32", count=offset) for m in self._maps]
        self.params, self.grads = buffers[0], buffers[1:]  # grads[r - 1]: worker r's
        for node, name, shape, off in self.entries:
            view = self.view(self.params, shape, off)
            view[...] = node.get_param(name)
            node.set_param(name, view)

    @staticmethod
    def view(buffer: numpy.ndarray, shape: Tuple[int, ...], offset: int) -> numpy.ndarray:
        size = int(numpy.prod(shape)) if shape else 1
        return buffer[offset:offset + size].reshape(shape)


class DataParallel:
    """``update(docs) -> loss``: spaCy's ``make_update`` over ``n_workers`` processes."""

    def __init__(self, model: Model, objective: Callable, optimizer: Optimizer, *, n_workers: int,
                 seed: Optional[int], loss_weight: Callable[[int, int], float],
                 batches: Callable[[], Iterable]) -> None:
        if "fork" not in multiprocessing.get_all_start_methods():
            raise RuntimeError("data-parallel pretraining needs the 'fork' start method (Linux, macOS)")
        self.model, self.objective, self.optimizer = model, objective, optimizer
        self.n_workers, self.loss_weight = n_workers, loss_weight
        self.shared = _Shared(model, n_workers)
        self.masks = _BatchMasks(model.ops, seed or 0)
        for node in model.walk():
            if node.name in BATCH_MASK_LAYERS:
                node.ops = self.masks
        self.step = 0
        ctx = multiprocessing.get_context("fork")
        self.pipes = []
        self.procs = []
        for rank in range(1, n_workers):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=self._worker, args=(rank, child_end, seed, batches), daemon=True)
            proc.start()
            child_end.close()
            self.pipes.append(parent_end)
            self.procs.append(proc)

    # ---- this process (rank 0) ---------------------------------------------------------------------
    def start_epoch(self) -> None:
        for pipe in self.pipes:
            pipe.send(("epoch",))

    def __call__(self, docs: Sequence) -> float:
        for pipe in self.pipes:
            pipe.send(("step",))
        self.step += 1
        self.masks.start_step(self.step)
        part = split_batch(docs, self.n_workers)[0]
        total = sum(len(doc) for doc in docs)
        loss = self._backprop(part, total)
        for rank, pipe in enumerate(self.pipes, start=1):
            try:
                reply = pipe.recv()
            except EOFError:
                raise RuntimeError(f"pretraining worker {rank} died (exit code {self.procs[rank - 1].exitcode}; "
                                   "out of memory?)") from None
            if reply[0] == "error":
                raise RuntimeError(f"pretraining worker {rank} failed:\n{reply[1]}")
            loss += reply[1]
        # Sum the workers' gradients into this process's, in rank order (reproducible), then one step.
        for node, name, shape, off in self.shared.entries:
            grads = [self.shared.view(buffer, shape, off) for buffer in self.shared.grads]
            if node.has_grad(name):
                mine = node.get_grad(name)
                for grad in grads:
                    mine += grad
            for grad in grads:
                grad[...] = 0
        self.model.finish_update(self.optimizer)
        for node, name, shape, off in self.shared.entries:  # the optimizer may return new arrays
            view = self.shared.view(self.shared.params, shape, off)
            param = node.get_param(name)
            if param is not view:
                view[...] = param
                node.set_param(name, view)
        return loss

    def _backprop(self, part: Sequence, total: int) -> float:
        n = sum(len(doc) for doc in part)
        if not n:
            return 0.0
        predictions, backprop = self.model.begin_update(list(part))
        loss, d_predictions = self.objective(self.model.ops, list(part), predictions)
        backprop(d_predictions * (n / total))
        return float(loss) * self.loss_weight(n, total)

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        for pipe in self.pipes:
            pipe.close()
        self.pipes, self.procs = [], []

    # ---- a forked worker ------------------------------------------------------------------------------
    def _worker(self, rank: int, pipe, seed: Optional[int], batches: Callable[[], Iterable]) -> None:
        try:
            if seed is not None:
                fix_random_seed(seed + rank)
            for node, name, shape, off in self.shared.entries:  # backprop adds into the shared buffer
                node.set_grad(name, self.shared.view(self.shared.grads[rank - 1], shape, off))
            stream = iter(())
            while True:
                message = pipe.recv()
                if message[0] == "stop":
                    return
                if message[0] == "epoch":
                    stream = iter(batches())
                    continue
                self.step += 1
                self.masks.start_step(self.step)
                docs = list(next(stream))
                part = split_batch(docs, self.n_workers)[rank]
                pipe.send(("ok", self._backprop(part, sum(len(doc) for doc in docs))))
        except EOFError:
            return
        except BaseException:  # noqa: BLE001  (reported to the parent, which raises)
            try:
                pipe.send(("error", traceback.format_exc()))
            except (BrokenPipeError, OSError):
                pass
