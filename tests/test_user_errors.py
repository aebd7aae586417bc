"""Every mistake a user can make in what they type or supply to ``lmao`` ends the same way: one line
``error: FILE[:LINE]: problem`` on stderr, exit status 1, no traceback, and nothing written.

One table over every subcommand's inputs: truncated gzip and tar files, binary garbage, the wrong text
encoding, empty files, negative or huge numbers, values of the wrong type, missing files and folders.
Every check happens before any tokenizing or training, so the whole table runs in seconds.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import pytest
from typer.testing import CliRunner

from lmao.cli import app

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO / "lmao-imdb-1k"
NER = REPO / "ontonotes-ner"
GARBAGE = bytes(range(256)) * 8  # binary: NUL bytes, invalid UTF-8, no gzip/tar header


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _imdb_rows() -> List[dict]:
    rows = [{"id": f"train/{lab}/{i}_7", "text": f"Review {i}: a {lab} film.", "label": lab, "split": "train"}
            for i in range(20) for lab in ("pos", "neg")]
    return rows + [{"text": f"Test review {i}.", "label": "pos", "split": "test"} for i in range(10)]


def _jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _tar_gz(members: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Inputs:
    """Good and bad input files, built once for the whole table (read-only for the cases)."""

    def __init__(self, root: Path):
        import numpy
        import spacy

        from experiments.data.docbins import write_docbin, write_pretraining_corpus

        self.root = root
        rows = _imdb_rows()
        self.imdb = _write(root / "imdb.jsonl", _jsonl(rows))
        big = gzip.compress(_jsonl(rows * 40).encode("utf-8"))
        self.imdb_truncated_gz = _write(root / "truncated.jsonl.gz", big[: len(big) // 2])
        self.garbage_jsonl = _write(root / "garbage.jsonl", GARBAGE)
        latin1 = _jsonl(rows[:3]) + json.dumps({"text": "Un film très réussi.", "label": "pos", "split": "train"},
                                               ensure_ascii=False) + "\n"
        self.latin1_jsonl = _write(root / "latin1.jsonl", latin1.encode("latin-1"))
        self.empty_jsonl = _write(root / "empty.jsonl", "")
        self.bad_row_jsonl = _write(root / "badrow.jsonl", _jsonl(rows[:2]) + '{"text": "x", "label": "pos"\n')
        reviews = {f"aclImdb/train/{lab}/{i}_7.txt": f"Review {i} " * 50 for i in range(30) for lab in ("pos", "neg")}
        tarball = _tar_gz(reviews)
        self.truncated_tar = _write(root / "truncated.tar.gz", tarball[: len(tarball) // 2])
        self.acl_folder = root / "acl-latin1"
        for name, text in list(reviews.items())[:4]:
            _write(self.acl_folder / name, text)
        self.acl_latin1_review = _write(self.acl_folder / "aclImdb/train/pos/99_9.txt", "Très bien.".encode("latin-1"))
        self.garbage_tar = _write(root / "garbage.tar.gz", GARBAGE)
        # NER: IOB (WNUT-17 style) files.
        self.iob = _write(root / "train.iob", "Paris\tB-location\nis\tO\nnice\tO\n\nBob\tB-person\nruns\tO\n")
        self.garbage_iob = _write(root / "garbage.iob", GARBAGE)
        self.latin1_iob = _write(root / "latin1.iob", "Paris\tB-location\n\nMünchen\tB-location\n".encode("latin-1"))
        self.empty_iob = _write(root / "empty.iob", "")
        prodigy = _jsonl([{"text": f"Bob {i} lives here", "spans": [{"start": 0, "end": 3, "label": "PERSON"}],
                           "answer": "accept"} for i in range(200)])
        gz = gzip.compress(prodigy.encode("utf-8"))
        self.prodigy_truncated = _write(root / "prodigy.jsonl.gz", gz[: len(gz) // 2])
        self.empty_raw = _write(root / "raw.txt", "")
        prodigy_latin1 = prodigy.splitlines(keepends=True)[:3] + [json.dumps(
            {"text": "Zoë est là", "spans": [], "answer": "accept"}, ensure_ascii=False) + "\n"]
        self.prodigy_latin1 = _write(root / "prodigy-latin1.jsonl", "".join(prodigy_latin1).encode("latin-1"))
        # Vectors: a tokenized corpus, text vectors files.
        nlp = spacy.blank("en")
        write_pretraining_corpus((nlp(f"a small corpus number {i}") for i in range(5)), root / "tokens")
        self.tokens = root / "tokens"
        (root / "no-shards").mkdir()
        self.no_shards = root / "no-shards"
        self.garbage_spacy = _write(root / "garbage" / "000000.spacy", GARBAGE)
        self.vectors_txt = _write(root / "vectors.txt", "2 3\nfilm 0.1 0.2 0.3\ndull 0.3 0.2 0.1\n")
        self.garbage_vectors = _write(root / "garbage.vec", GARBAGE)
        self.empty_vectors = _write(root / "empty.vec", "")
        self.latin1_vectors = _write(root / "latin1.vec", "2 3\nfilm 0.1 0.2 0.3\ncafé 0.3 0.2 0.1\n".encode("latin-1"))
        vec = gzip.compress(("200 3\n" + "".join(f"w{i} 0.1 0.2 0.3\n" for i in range(200))).encode())
        self.truncated_vectors = _write(root / "truncated.vec.gz", vec[: len(vec) // 2])
        self.ragged_vectors = _write(root / "ragged.vec", "2 3\nfilm 0.1 0.2 0.3\ndull 0.3 0.2\n")
        # A prepared corpus as far as a trial checks it before training.
        self.corpus = root / "corpus"
        docs = [nlp("a fine film"), nlp("dull")]
        docs[0].cats, docs[1].cats = {"POSITIVE": 1.0, "NEGATIVE": 0.0}, {"POSITIVE": 0.0, "NEGATIVE": 1.0}
        write_docbin(docs, self.corpus / "train.spacy")
        write_docbin(docs, self.corpus / "dev.spacy")
        write_pretraining_corpus(iter(docs), self.corpus / "pretrain")
        nlp.vocab.set_vector("film", numpy.ones(4, dtype="f"))
        nlp.to_disk(self.corpus / "vectors")
        # Experiment folders with one bad file each.
        self.exp_garbage_defaults = self._experiment("garbage-defaults", "defaults.yml", GARBAGE)
        self.exp_latin1_defaults = self._experiment("latin1-defaults", "defaults.yml",
                                                    "task: textcat\n# très\nparams: {}\n".encode("latin-1"))
        self.exp_empty_defaults = self._experiment("empty-defaults", "defaults.yml", "")
        self.exp_garbage_config = self._experiment("garbage-config", "config.cfg", GARBAGE)
        self.exp_bad_config = self._experiment("bad-config", "config.cfg",
                                               (IMDB / "config.cfg").read_text().replace("tolerance = 0.2", "tolerance = oops"))
        self.exp_garbage_sweep = self._experiment("garbage-sweep", "sweep.yml", GARBAGE)
        self.exp_empty_sweep = self._experiment("empty-sweep", "sweep.yml", "")
        self.exp_latin1_sweep = self._experiment("latin1-sweep", "sweep.yml", "# très\nmetric: accuracy\n".encode("latin-1"))
        self.exp_no_sweep = self._experiment("no-sweep", "sweep.yml", None)
        # Campaign designs and results.
        self.design_garbage = _write(root / "garbage-design.yml", GARBAGE)
        self.design_empty = _write(root / "empty-design.yml", "")
        self.design_latin1 = _write(root / "latin1-design.yml", "# très\nexperiment: x\n".encode("latin-1"))
        self.design_bad_seed = _write(root / "seed-design.yml",
                                      f"experiment: {IMDB}\nruns: {root / 'design-runs'}\nseeds: [zero]\n"
                                      "settings:\n  - name: a\n    params: {}\n")
        self.runs_garbage = root / "runs-garbage"
        _write(self.runs_garbage / "t1" / "results.json", GARBAGE)
        self.runs_latin1 = root / "runs-latin1"
        _write(self.runs_latin1 / "t1" / "results.json", '{"experiment": "très"}'.encode("latin-1"))
        self.runs_empty = root / "runs-empty"
        _write(self.runs_empty / "t1" / "results.json", "")

    def _experiment(self, name: str, bad_file: str, data) -> Path:
        folder = shutil.copytree(IMDB, self.root / "exp" / name)
        if data is None:
            (folder / bad_file).unlink()
        else:
            _write(folder / bad_file, data)
        return folder


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Inputs, Path], List[str]]  # (inputs, output folder for this case) -> arguments
    where: Callable[[Inputs, Path], object]  # the file (or option) the error line names
    line: Optional[int] = None  # the line it names, when the input has lines


def out(name: str = "out"):
    return lambda i, o: o / name


CASES = [
    # lmao data imdb
    Case("imdb-truncated-gzip", lambda i, o: ["data", "imdb", str(i.imdb_truncated_gz), str(o / "out")],
         lambda i, o: i.imdb_truncated_gz),
    Case("imdb-binary-garbage", lambda i, o: ["data", "imdb", str(i.garbage_jsonl), str(o / "out")],
         lambda i, o: i.garbage_jsonl, 1),
    Case("imdb-latin1", lambda i, o: ["data", "imdb", str(i.latin1_jsonl), str(o / "out")],
         lambda i, o: i.latin1_jsonl, 4),
    Case("imdb-empty", lambda i, o: ["data", "imdb", str(i.empty_jsonl), str(o / "out")], lambda i, o: i.empty_jsonl),
    Case("imdb-bad-row", lambda i, o: ["data", "imdb", str(i.bad_row_jsonl), str(o / "out")],
         lambda i, o: i.bad_row_jsonl, 3),
    Case("imdb-truncated-tar", lambda i, o: ["data", "imdb", str(i.truncated_tar), str(o / "out")],
         lambda i, o: i.truncated_tar),
    Case("imdb-garbage-tar", lambda i, o: ["data", "imdb", str(i.garbage_tar), str(o / "out")],
         lambda i, o: i.garbage_tar),
    Case("imdb-folder-latin1-review", lambda i, o: ["data", "imdb", str(i.acl_folder), str(o / "out")],
         lambda i, o: "train/pos/99_9.txt"),
    Case("imdb-missing-source", lambda i, o: ["data", "imdb", str(o / "nowhere.jsonl"), str(o / "out")],
         lambda i, o: o / "nowhere.jsonl"),
    Case("imdb-missing-folder", lambda i, o: ["data", "imdb", str(o / "no" / "aclImdb"), str(o / "out")],
         lambda i, o: o / "no" / "aclImdb"),
    Case("imdb-n-train-huge", lambda i, o: ["data", "imdb", str(i.imdb), str(o / "out"), "--n-train", "30000",
                                            "--n-dev", "5"], lambda i, o: "--n-train"),
    Case("imdb-n-train-negative", lambda i, o: ["data", "imdb", str(i.imdb), str(o / "out"), "--n-train", "-5"],
         lambda i, o: "--n-train"),
    Case("imdb-n-dev-zero", lambda i, o: ["data", "imdb", str(i.imdb), str(o / "out"), "--n-dev", "0"],
         lambda i, o: "--n-dev"),
    Case("imdb-n-test-negative", lambda i, o: ["data", "imdb", str(i.imdb), str(o / "out"), "--n-test", "-1"],
         lambda i, o: "--n-test"),
    Case("imdb-max-pretrain-negative", lambda i, o: ["data", "imdb", str(i.imdb), str(o / "out"),
                                                     "--max-pretrain-docs", "-1"], lambda i, o: "--max-pretrain-docs"),
    Case("imdb-n-process-negative", lambda i, o: ["data", "imdb", str(i.imdb), str(o / "out"), "--n-process", "-2"],
         lambda i, o: "--n-process"),
    Case("imdb-n-train-not-int", lambda i, o: ["data", "imdb", str(i.imdb), str(o / "out"), "--n-train", "many"],
         lambda i, o: "--n-train"),
    Case("imdb-unknown-suffix", lambda i, o: ["data", "imdb", str(i.iob), str(o / "out")], lambda i, o: i.iob),
    Case("imdb-out-is-a-file", lambda i, o: ["data", "imdb", str(i.imdb), str(i.imdb / "out"), "--n-train", "2",
                                             "--n-dev", "2"], lambda i, o: i.imdb),
    # lmao data ner
    Case("ner-binary-garbage", lambda i, o: ["data", "ner", str(i.garbage_iob), str(i.iob), str(o / "out")],
         lambda i, o: i.garbage_iob, 1),
    Case("ner-latin1", lambda i, o: ["data", "ner", str(i.iob), str(i.latin1_iob), str(o / "out")],
         lambda i, o: i.latin1_iob, 3),
    Case("ner-empty", lambda i, o: ["data", "ner", str(i.empty_iob), str(i.iob), str(o / "out")],
         lambda i, o: i.empty_iob),
    Case("ner-truncated-gzip", lambda i, o: ["data", "ner", str(i.prodigy_truncated), str(i.iob), str(o / "out")],
         lambda i, o: i.prodigy_truncated),
    Case("ner-missing-folder", lambda i, o: ["data", "ner", str(o / "nowhere"), str(i.iob), str(o / "out")],
         lambda i, o: o / "nowhere"),
    Case("ner-missing-test", lambda i, o: ["data", "ner", str(i.iob), str(i.iob), str(o / "out"),
                                           "--test", str(o / "test.iob")], lambda i, o: o / "test.iob"),
    Case("ner-empty-raw", lambda i, o: ["data", "ner", str(i.iob), str(i.iob), str(o / "out"), "--raw",
                                        str(i.empty_raw)], lambda i, o: i.empty_raw),
    Case("ner-n-sents-zero", lambda i, o: ["data", "ner", str(i.iob), str(i.iob), str(o / "out"), "--n-sents", "0"],
         lambda i, o: "--n-sents"),
    Case("ner-max-train-negative", lambda i, o: ["data", "ner", str(i.iob), str(i.iob), str(o / "out"),
                                                 "--max-train-docs", "-1"], lambda i, o: "--max-train-docs"),
    Case("ner-missing-argument", lambda i, o: ["data", "ner", str(i.iob)], lambda i, o: "lmao data ner"),
    # lmao vectors train / import
    Case("vectors-train-glove", lambda i, o: ["vectors", "train", str(i.tokens), str(o / "out"), "--algorithm",
                                              "glove"], lambda i, o: "--algorithm"),
    Case("vectors-train-dims-zero", lambda i, o: ["vectors", "train", str(i.tokens), str(o / "out"), "--dims", "0"],
         lambda i, o: "--dims"),
    Case("vectors-train-epochs-negative", lambda i, o: ["vectors", "train", str(i.tokens), str(o / "out"),
                                                        "--epochs", "-1"], lambda i, o: "--epochs"),
    Case("vectors-train-window-zero", lambda i, o: ["vectors", "train", str(i.tokens), str(o / "out"),
                                                    "--window", "0"], lambda i, o: "--window"),
    Case("vectors-train-min-count-huge", lambda i, o: ["vectors", "train", str(i.tokens), str(o / "out"),
                                                       "--min-count", "1000000"], lambda i, o: "--min-count"),
    Case("vectors-train-dims-not-int", lambda i, o: ["vectors", "train", str(i.tokens), str(o / "out"),
                                                     "--dims", "wide"], lambda i, o: "--dims"),
    Case("vectors-train-missing-corpus", lambda i, o: ["vectors", "train", str(o / "nowhere"), str(o / "out")],
         lambda i, o: o / "nowhere"),
    Case("vectors-train-no-shards", lambda i, o: ["vectors", "train", str(i.no_shards), str(o / "out")],
         lambda i, o: i.no_shards),
    Case("vectors-train-garbage-shard", lambda i, o: ["vectors", "train", str(i.garbage_spacy.parent), str(o / "out")],
         lambda i, o: i.garbage_spacy),
    Case("vectors-import-garbage", lambda i, o: ["vectors", "import", str(i.garbage_vectors), str(o / "out")],
         lambda i, o: i.garbage_vectors, 1),
    Case("vectors-import-empty", lambda i, o: ["vectors", "import", str(i.empty_vectors), str(o / "out")],
         lambda i, o: i.empty_vectors),
    Case("vectors-import-latin1", lambda i, o: ["vectors", "import", str(i.latin1_vectors), str(o / "out")],
         lambda i, o: i.latin1_vectors, 3),
    Case("vectors-import-truncated-gzip", lambda i, o: ["vectors", "import", str(i.truncated_vectors),
                                                        str(o / "out")], lambda i, o: i.truncated_vectors),
    Case("vectors-import-ragged", lambda i, o: ["vectors", "import", str(i.ragged_vectors), str(o / "out")],
         lambda i, o: i.ragged_vectors, 3),
    Case("vectors-prune-missing", lambda i, o: ["vectors", "prune", str(o / "nowhere"), str(o / "out"), "--rows", "2"],
         lambda i, o: o / "nowhere"),
    Case("vectors-prune-negative", lambda i, o: ["vectors", "prune", str(i.corpus / "vectors"), str(o / "out"),
                                                 "--rows", "-2"], lambda i, o: "--rows"),
    Case("vectors-prune-too-many-rows", lambda i, o: ["vectors", "prune", str(i.corpus / "vectors"), str(o / "out"),
                                                      "--rows", "1000"], lambda i, o: "--rows"),
    Case("vectors-import-missing", lambda i, o: ["vectors", "import", str(o / "nowhere.vec"), str(o / "out")],
         lambda i, o: o / "nowhere.vec"),
    Case("vectors-import-not-a-pipeline", lambda i, o: ["vectors", "import", str(i.no_shards), str(o / "out")],
         lambda i, o: i.no_shards),
    # lmao trial
    Case("trial-missing-experiment", lambda i, o: ["trial", str(o / "nowhere"), "--out", str(o / "out")],
         lambda i, o: o / "nowhere"),
    Case("trial-garbage-defaults", lambda i, o: ["trial", str(i.exp_garbage_defaults), "--out", str(o / "out")],
         lambda i, o: i.exp_garbage_defaults / "defaults.yml"),
    Case("trial-latin1-defaults", lambda i, o: ["trial", str(i.exp_latin1_defaults), "--out", str(o / "out")],
         lambda i, o: i.exp_latin1_defaults / "defaults.yml", 2),
    Case("trial-empty-defaults", lambda i, o: ["trial", str(i.exp_empty_defaults), "--out", str(o / "out")],
         lambda i, o: i.exp_empty_defaults / "defaults.yml"),
    Case("trial-garbage-config", lambda i, o: ["trial", str(i.exp_garbage_config), "--out", str(o / "out"),
                                               "-P", f"corpus_dir={i.corpus}"],
         lambda i, o: i.exp_garbage_config / "config.cfg"),
    Case("trial-bad-config-value", lambda i, o: ["trial", str(i.exp_bad_config), "--out", str(o / "out"),
                                                 "-P", f"corpus_dir={i.corpus}"],
         lambda i, o: i.exp_bad_config / "config.cfg"),
    Case("trial-negative-width", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P", "width=-5"],
         lambda i, o: "-P"),
    Case("trial-dropout-above-1", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P", "dropout=2"],
         lambda i, o: "-P"),
    Case("trial-huge-epochs", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P",
                                            "pretrain_epochs=5", "-P", "pretrain_max_epochs=3",
                                            "-P", f"corpus_dir={i.corpus}"], lambda i, o: "-P"),
    Case("trial-param-wrong-type", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P", "depth=deep"],
         lambda i, o: "-P"),
    Case("trial-override-wrong-type", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P",
                                                    f"corpus_dir={i.corpus}", "--pretraining.dropout", "lots"],
         lambda i, o: "--pretraining.dropout"),
    Case("trial-override-unknown-section", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P",
                                                         f"corpus_dir={i.corpus}", "--pretrainig.dropout", "0.1"],
         lambda i, o: "--pretrainig.dropout"),
    Case("trial-missing-pretrain-corpus", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P",
                                                        f"corpus_dir={i.corpus}", "-P", "pretrain_epochs=1",
                                                        "-P", f"pretrain_corpus={o / 'elsewhere'}"],
         lambda i, o: o / "elsewhere" / "pretrain"),
    Case("trial-missing-corpus", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P",
                                               f"corpus_dir={o / 'nowhere'}"],
         lambda i, o: o / "nowhere" / "train.spacy"),
    Case("trial-missing-vectors", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P",
                                                f"corpus_dir={i.corpus}", "-P", f"vectors={o / 'novectors'}"],
         lambda i, o: o / "novectors"),
    Case("trial-bad-gpu", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P", f"corpus_dir={i.corpus}",
                                        "--gpu", "fast"], lambda i, o: "--gpu"),
    Case("trial-eval-processes-negative", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P",
                                                        f"corpus_dir={i.corpus}", "--eval-processes", "-1"],
         lambda i, o: "--eval-processes"),
    Case("trial-final-without-test-split", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "-P",
                                                         f"corpus_dir={i.corpus}", "--final"],
         lambda i, o: i.corpus / "test.spacy"),
    Case("trial-bad-meta", lambda i, o: ["trial", str(IMDB), "--out", str(o / "out"), "--meta", "novalue"],
         lambda i, o: "--meta"),
    # lmao sweep / polyaxonfile
    Case("sweep-garbage-sweep-yml", lambda i, o: ["sweep", str(i.exp_garbage_sweep), "--runs", str(o / "runs")],
         lambda i, o: i.exp_garbage_sweep / "sweep.yml"),
    Case("sweep-empty-sweep-yml", lambda i, o: ["sweep", str(i.exp_empty_sweep), "--runs", str(o / "runs")],
         lambda i, o: i.exp_empty_sweep / "sweep.yml"),
    Case("sweep-latin1-sweep-yml", lambda i, o: ["sweep", str(i.exp_latin1_sweep), "--runs", str(o / "runs")],
         lambda i, o: i.exp_latin1_sweep / "sweep.yml", 1),
    Case("sweep-no-sweep-yml", lambda i, o: ["sweep", str(i.exp_no_sweep), "--runs", str(o / "runs")],
         lambda i, o: i.exp_no_sweep / "sweep.yml"),
    Case("sweep-n-trials-negative", lambda i, o: ["sweep", str(IMDB), "--runs", str(o / "runs"), "--n-trials", "-1"],
         lambda i, o: "--n-trials"),
    Case("sweep-workers-zero", lambda i, o: ["sweep", str(IMDB), "--runs", str(o / "runs"), "--workers", "0"],
         lambda i, o: "--workers"),
    Case("sweep-heartbeat-zero", lambda i, o: ["sweep", str(IMDB), "--runs", str(o / "runs"), "--heartbeat", "0"],
         lambda i, o: "--heartbeat"),
    Case("sweep-bad-fixed-param", lambda i, o: ["sweep", str(IMDB), "--runs", str(o / "runs"), "-P", "width=wide"],
         lambda i, o: "-P"),
    Case("polyaxonfile-no-sweep-yml", lambda i, o: ["polyaxonfile", str(i.exp_no_sweep), "--out", str(o / "out")],
         lambda i, o: i.exp_no_sweep / "sweep.yml"),
    Case("polyaxonfile-garbage-sweep-yml", lambda i, o: ["polyaxonfile", str(i.exp_garbage_sweep), "--out",
                                                         str(o / "out")], lambda i, o: i.exp_garbage_sweep / "sweep.yml"),
    Case("polyaxonfile-concurrency-zero", lambda i, o: ["polyaxonfile", str(IMDB), "--out", str(o / "out"),
                                                        "--concurrency", "0"], lambda i, o: "--concurrency"),
    # lmao campaign
    Case("campaign-missing-design", lambda i, o: ["campaign", str(o / "nowhere.yml")], lambda i, o: o / "nowhere.yml"),
    Case("campaign-garbage-design", lambda i, o: ["campaign", str(i.design_garbage)], lambda i, o: i.design_garbage),
    Case("campaign-empty-design", lambda i, o: ["campaign", str(i.design_empty)], lambda i, o: i.design_empty),
    Case("campaign-latin1-design", lambda i, o: ["campaign", str(i.design_latin1)], lambda i, o: i.design_latin1, 1),
    Case("campaign-seed-wrong-type", lambda i, o: ["campaign", str(i.design_bad_seed)],
         lambda i, o: i.design_bad_seed),
    Case("campaign-max-trials-negative", lambda i, o: ["campaign", str(i.design_bad_seed), "--max-trials", "-1"],
         lambda i, o: "--max-trials"),
    # lmao report
    Case("report-missing-runs", lambda i, o: ["report", str(o / "nowhere"), "--out", str(o / "out")],
         lambda i, o: o / "nowhere"),
    Case("report-garbage-results", lambda i, o: ["report", str(i.runs_garbage), "--out", str(o / "out"),
                                                 "--no-readmes"], lambda i, o: i.runs_garbage / "t1" / "results.json"),
    Case("report-latin1-results", lambda i, o: ["report", str(i.runs_latin1), "--out", str(o / "out"),
                                                "--no-readmes"], lambda i, o: i.runs_latin1 / "t1" / "results.json"),
    Case("report-empty-results", lambda i, o: ["report", str(i.runs_empty), "--out", str(o / "out"),
                                               "--no-readmes"], lambda i, o: i.runs_empty / "t1" / "results.json"),
    Case("report-top-k-zero", lambda i, o: ["report", str(i.runs_garbage), "--out", str(o / "out"), "--top-k", "0"],
         lambda i, o: "--top-k"),
    # lmao data upload / merge-annotations
    Case("upload-not-gs", lambda i, o: ["data", "upload", str(i.corpus), str(o / "elsewhere")],
         lambda i, o: o / "elsewhere"),
    Case("upload-missing-corpus", lambda i, o: ["data", "upload", str(o / "nowhere"), "gs://bucket/corpus"],
         lambda i, o: o / "nowhere" / "train.spacy"),
    Case("merge-truncated-gzip", lambda i, o: ["data", "merge-annotations", str(i.prodigy_truncated), "--out",
                                               str(o / "out")], lambda i, o: i.prodigy_truncated),
    Case("merge-binary-garbage", lambda i, o: ["data", "merge-annotations", str(i.garbage_jsonl), "--out",
                                               str(o / "out")], lambda i, o: i.garbage_jsonl, 1),
    Case("merge-latin1", lambda i, o: ["data", "merge-annotations", str(i.prodigy_latin1), "--out",
                                       str(o / "out")], lambda i, o: i.prodigy_latin1, 4),
    Case("merge-empty", lambda i, o: ["data", "merge-annotations", str(i.empty_jsonl), "--out", str(o / "out")],
         lambda i, o: i.empty_jsonl),
    Case("merge-missing", lambda i, o: ["data", "merge-annotations", str(o / "nowhere.jsonl"), "--out",
                                        str(o / "out")], lambda i, o: o / "nowhere.jsonl"),
    Case("merge-shard-docs-zero", lambda i, o: ["data", "merge-annotations", str(i.imdb), "--out", str(o / "out"),
                                                "--shard-docs", "0"], lambda i, o: "--shard-docs"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Inputs:
    return Inputs(tmp_path_factory.mktemp("inputs"))


def _tree(folder: Path) -> List[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_user_error_is_one_line_naming_the_file(case: Case, inputs: Inputs, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written to a default place would land here
    inputs_before = _tree(inputs.root)
    res = CliRunner().invoke(app, case.argv(inputs, tmp_path))
    where = str(case.where(inputs, tmp_path))
    assert isinstance(res.exception, SystemExit), f"{type(res.exception).__name__}: {res.exception}\n{res.output}"
    assert res.exit_code == 1, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.output and "Aborted" not in res.output
    expected = f"error: {where}:" if case.line is None else f"error: {where}:{case.line}: "
    assert errors[0].startswith(expected), errors[0]
    assert _tree(tmp_path) == [], f"left behind: {_tree(tmp_path)}"
    assert _tree(inputs.root) == inputs_before
