"""A tracking store fabricated with real MLflow runs (temp SQLite + artifact folder).

The runs follow docs/ARCHITECTURE.md: evaluate runs (2 tasks x 3 folds at K=4, a K sweep at
K=2 and 8 on one fold, a superseded duplicate, a failed run, a run of another study), a
phase1 -> phase2 -> phase3 lineage, and a tune run with trial children. `Fabricated` keeps the
raw numbers so that tests recompute every expected value independently of `ssmoe.report`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy.stats import wilcoxon

METHODS = ("cubic", "unet", "hardmoe", "ssmoe")
SCALES = {"cubic": 1.0, "unet": 0.5, "hardmoe": 0.55, "ssmoe": 0.4}
SUBJECTS = ("s1", "s2", "s3")
TASKS = ("aniso", "iso")
N_VOLUMES = 40
EXPERIMENT = "ssmoe-test"
T0 = 1_700_000_000_000  # ms; start times are T0 + order, so "latest" is deterministic


def statistics(x: np.ndarray) -> dict[str, float]:
    """The seven statistics of the contract, computed here independently of the package."""
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    return {
        "average": float(np.mean(x)),
        "variance": float(np.var(x)),
        "min": float(np.min(x)),
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "max": float(np.max(x)),
    }


@dataclass
class Fabricated:
    uri: str
    experiment: str
    root_run: str
    per_volume: dict[tuple[str, str, int], pd.DataFrame] = field(default_factory=dict)
    metrics: dict[tuple[str, str, int], dict[str, float]] = field(default_factory=dict)
    wilcoxon: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    n_weights: dict[int, int] = field(default_factory=dict)
    trials: pd.DataFrame | None = None
    stray_subject: str = "s9"
    tune_run: str = ""


class _Writer:
    def __init__(self, client: MlflowClient, exp_id: str, tmp: Path) -> None:
        self.client, self.exp_id, self.tmp, self.clock = client, exp_id, tmp, 0

    def run(
        self,
        step: str,
        params: dict | None = None,
        metrics: dict | None = None,
        tags: dict | None = None,
        artifacts: dict[str, object] | None = None,
        status: str = "FINISHED",
    ) -> str:
        self.clock += 1000
        run = self.client.create_run(
            self.exp_id, start_time=T0 + self.clock, tags={"ssmoe.step": step, **(tags or {})}
        )
        rid = run.info.run_id
        for k, v in (params or {}).items():
            self.client.log_param(rid, k, v)
        for k, v in (metrics or {}).items():
            self.client.log_metric(rid, k, v)
        for path, obj in (artifacts or {}).items():
            local = self.tmp / rid / path
            local.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(obj, pd.DataFrame):
                obj.to_csv(local, index=False)
            elif isinstance(obj, dict) and path.endswith(".npz"):
                np.savez(local, **obj)
            else:
                local.write_text(json.dumps(obj))
            self.client.log_artifact(rid, str(local), str(Path(path).parent))
        if status != "RUNNING":
            self.client.set_terminated(rid, status, end_time=T0 + self.clock + 500)
        return rid


def _per_volume(rng: np.random.Generator) -> pd.DataFrame:
    base = rng.lognormal(mean=-1.0, sigma=1.2, size=N_VOLUMES)
    df = pd.DataFrame(
        {
            "volume": np.arange(N_VOLUMES),
            "b": rng.choice([0, 500, 1000, 2000], N_VOLUMES),
            "TI": rng.uniform(20, 7000, N_VOLUMES),
            "TE": rng.choice([80, 105, 130], N_VOLUMES),
        }
    )
    for m in METHODS:
        df[m] = base * SCALES[m] * rng.lognormal(0, 0.3, N_VOLUMES)
    return df


def _evaluation(rng: np.random.Generator, task: str, k: int) -> tuple[pd.DataFrame, dict]:
    df = _per_volume(rng)
    metrics = {f"{s}_{m}": v for m in METHODS for s, v in statistics(df[m].to_numpy()).items()}
    metrics |= {"n_weights_unet": 1_000_000, "n_weights_ssmoe": 1_000_000 + 250_000 * k}
    summary = pd.DataFrame([{"method": m, **statistics(df[m].to_numpy())} for m in METHODS])
    rows = []
    for i, a in enumerate(METHODS):
        for b in METHODS[i + 1 :]:
            res = wilcoxon(df[a], df[b], alternative="two-sided")
            rows.append((a, b, float(res.statistic), float(res.pvalue)))
    wil = pd.DataFrame(rows, columns=["method_a", "method_b", "statistic", "p_value"])
    # As ssmoe.phases.evaluate logs it: column `label`, then `pred_<j>` counts.
    matrix = rng.integers(0, 20, (k, k)) + np.eye(k, dtype=int) * 60
    conf = pd.DataFrame(matrix, columns=[f"pred_{j}" for j in range(k)])
    conf.insert(0, "label", np.arange(k))
    nx, nz = 24, 20
    xx, zz = np.meshgrid(np.linspace(-1, 1, nx), np.linspace(-1, 1, nz), indexing="ij")
    hr = np.exp(-(xx**2 + zz**2) * 2) * 100
    coronal = {"hr": hr, "lr": hr[:, ::2] if task == "aniso" else hr[::2, ::2]}
    for j, m in enumerate(METHODS):
        coronal[m] = hr + rng.normal(0, 4.0 * SCALES[m], hr.shape) + (j == 0) * 3 * xx
    coronal |= {
        "volume": np.array(7),
        "slice": np.array(11),
        "hr_zooms": np.array([2.5, 2.5, 2.5]),
        "lr_zooms": np.array([2.5, 2.5, 5.0]) if task == "aniso" else np.array([5.0, 5.0, 5.0]),
    }
    artifacts = {
        "evaluation/per_volume_mse.csv": df,
        "evaluation/summary.csv": summary,
        "evaluation/wilcoxon.csv": wil,
        "evaluation/confusion.csv": conf,
        "evaluation/coronal.npz": coronal,
    }
    return df, {"metrics": metrics, "artifacts": artifacts, "wilcoxon": wil}


def fabricate(tmp: Path) -> Fabricated:
    """Write the whole store under `tmp` and return what was logged."""
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(EXPERIMENT, artifact_location=(tmp / "artifacts").as_uri())
    w = _Writer(client, exp_id, tmp / "staging")
    rng = np.random.default_rng(0)
    root = w.run("cv", params={"task": "both"})
    tag = {"ssmoe.root_run": root}
    fab = Fabricated(uri=uri, experiment=EXPERIMENT, root_run=root)

    # Lineage for the last fold of aniso (figures' fold): phase1 -> phase2 -> phase3.
    scores = pd.DataFrame({"subject": "s1", "volume": 0, "x": 0, "y": 0, "z": 0, "b": 0,
                           "TI": 0, "TE": 0, "score": rng.lognormal(-2, 1.5, 500)})  # fmt: skip
    p1 = w.run("phase1", tags=tag, artifacts={"scores/patch_scores.csv": scores})
    seg = {"method": "mqs", "k": 4, "thresholds": [0.05, 0.2, 0.8], "counts": [100, 150, 150, 100]}
    p2 = w.run("phase2", params={"phase1_run": p1}, tags=tag,
               artifacts={"segmenter/segmenter.json": seg})  # fmt: skip
    p3 = w.run("phase3", params={"phase2_run": p2}, tags=tag)

    for task in TASKS:
        for subject in SUBJECTS:
            ks = (2, 4, 8) if (task, subject) == ("iso", "s1") else (4,)
            for k in ks:
                if (task, subject, k) == ("aniso", "s2", 4):  # superseded by the next run
                    _, old = _evaluation(rng, task, k)
                    w.run("evaluate", params=_eval_params(task, subject, k), tags=tag,
                          metrics=old["metrics"], artifacts=old["artifacts"])  # fmt: skip
                df, ev = _evaluation(rng, task, k)
                params = _eval_params(task, subject, k)
                if (task, subject) == ("aniso", "s3"):
                    params["phase3_run"] = p3
                if (task, subject) == ("iso", "s3"):
                    # Reused by the pipeline from an earlier study: tagged with that study's
                    # root, found through the `evaluate_run` param of this study's pipeline.
                    reused = w.run("evaluate", params=params, metrics=ev["metrics"],
                                   tags={"ssmoe.root_run": "earlier"}, artifacts=ev["artifacts"])  # fmt: skip
                    w.run("pipeline", params={"evaluate_run": reused}, tags=tag)
                else:
                    w.run("evaluate", params=params, metrics=ev["metrics"], tags=tag,
                          artifacts=ev["artifacts"])  # fmt: skip
                fab.per_volume[(task, subject, k)] = df
                fab.metrics[(task, subject, k)] = ev["metrics"]
                if k == 4:
                    fab.wilcoxon[(task, subject)] = ev["wilcoxon"]
                fab.n_weights[k] = ev["metrics"]["n_weights_ssmoe"]
    # A newer evaluate run that failed, and one that is still running: both ignored.
    _, bad = _evaluation(rng, "aniso", 4)
    bad["metrics"] = {key: v * 100 for key, v in bad["metrics"].items()}
    w.run("evaluate", params=_eval_params("aniso", "s1", 4), tags=tag, metrics=bad["metrics"],
          status="FAILED")  # fmt: skip
    w.run("evaluate", params=_eval_params("aniso", "s1", 4), tags=tag, metrics=bad["metrics"],
          status="RUNNING")  # fmt: skip
    # Another study in the same experiment (different root): only seen without --root-run.
    _, stray = _evaluation(rng, "aniso", 16)
    w.run("evaluate", params=_eval_params("aniso", fab.stray_subject, 16),
          tags={"ssmoe.root_run": "other"}, metrics=stray["metrics"])  # fmt: skip

    fab.tune_run, fab.trials = _fabricate_tuning(w, rng, tag)
    return fab


def _eval_params(task: str, subject: str, k: int) -> dict[str, str]:
    return {"task": task, "test_subject": subject, "k": str(k), "segmenter": "mqs",
            "preset": "tiny"}  # fmt: skip


def _fabricate_tuning(w: _Writer, rng: np.random.Generator, tag: dict) -> tuple[str, pd.DataFrame]:
    tune = w.run(
        "tune",
        params={"study": "ablation", "n_trials": 10, "best_trial": 3},
        metrics={
            "best_objective": 0.1,
            "test_average_ssmoe": 0.21,
            "test_average_unet": 0.3,
            "test_max_ssmoe": 2.0,
            "test_max_unet": 3.5,
        },  # fmt: skip
        tags=tag,
    )
    records = []
    grid = [(k, s) for k in (2, 4, 8) for s in ("mqs", "kmeans")]
    for number in range(10):
        k, seg = grid[number % len(grid)]
        lr = float(10 ** rng.uniform(-4, -2))
        state = "COMPLETE" if number not in (7, 9) else ("PRUNED" if number == 7 else "FAIL")
        objective = 0.5 / np.sqrt(k) + (0.05 if seg == "kmeans" else 0) + abs(np.log10(lr) + 3) / 20
        metrics = {}
        if state == "COMPLETE":
            metrics = {"objective": objective, "val_average": objective,
                       "val_variance": 2 * objective, "val_median": objective / 3,
                       "val_max": 10 * objective}  # fmt: skip
        trial = w.run(
            "trial",
            params={
                "study": "ablation",
                "trial_number": number,
                "k": k,
                "segmenter": seg,
                "lr": lr,
            },  # fmt: skip
            metrics=metrics,
            tags={**tag, "mlflow.parentRunId": tune, "ssmoe.trial_state": state},
            status="FINISHED" if state == "COMPLETE" else "KILLED",
        )
        if number == 0:  # a validation evaluation under the trial: not a Table 1 fold
            _, val = _evaluation(rng, "aniso", k)
            w.run("evaluate", params=_eval_params("aniso", "s1", 4),
                  metrics={key: v * 100 for key, v in val["metrics"].items()},
                  tags={**tag, "mlflow.parentRunId": trial})  # fmt: skip
        records.append({"number": number, "k": k, "segmenter": seg, "lr": lr, "state": state,
                        **metrics})  # fmt: skip
    return tune, pd.DataFrame(records)


@pytest.fixture(scope="session")
def fabricated(tmp_path_factory: pytest.TempPathFactory) -> Fabricated:
    tmp = tmp_path_factory.mktemp("store")
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    try:
        fab = fabricate(tmp)
    finally:
        mp.undo()
    return fab


# --- HTML parsing (stdlib only) ---------------------------------------------------------------


@dataclass
class ParsedCell:
    text: str
    tag: str
    attrs: dict[str, str]

    @property
    def bold(self) -> bool:
        return "best" in self.attrs.get("class", "")


class PageParser(HTMLParser):
    """Collects tables (by the id of their enclosing <figure>), <img src> and section texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[ParsedCell]]] = {}
        self.headers: dict[str, list[str]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self.sections: dict[str, str] = {}
        self._figure: str | None = None
        self._section: str | None = None
        self._cell: ParsedCell | None = None
        self._row: list[ParsedCell] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            self._section = a.get("id")
            self.sections[self._section] = ""
        elif tag == "figure" and "table" in a.get("class", ""):
            self._figure = a["id"]
            self.tables[self._figure] = []
            self.headers[self._figure] = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._figure and not self._in_head:
            self._row = []
        elif tag in ("td", "th") and self._figure:
            self._cell = ParsedCell("", tag, a)
        elif tag == "br" and self._cell is not None:
            self._cell.text += " "
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "a":
            self.links.append(a.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None:
            self._cell.text = " ".join(self._cell.text.split())
            if self._in_head:
                self.headers[self._figure].append(self._cell.text)
            elif self._row is not None:
                self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._figure].append(self._row)
            self._row = None
        elif tag == "figure":
            self._figure = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.text += data
        if self._section:
            self.sections[self._section] += data


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def assert_close_text(text: str, expected: float) -> None:
    """`text` (as rounded by the report) represents `expected` to its last printed digit."""
    value = float(text)
    mantissa = text.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(text.lower().split("e")[1]) if "e" in text.lower() else 0
    tol = 0.5 * 10 ** (exponent - decimals) * 1.0001
    assert abs(value - expected) <= tol, f"{text!r} != {expected!r} (tolerance {tol})"
