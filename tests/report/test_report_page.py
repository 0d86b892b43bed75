"""Figures, graceful degradation, logging the report to a run, and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Fabricated, parse_page
from mlflow.tracking import MlflowClient

from ssmoe.cli import main
from ssmoe.report import build_report

EXPECTED_FIGURES = {
    "fig1_mse_histogram.png",
    "fig_s2_distributions.png",
    "fig3_coronal_aniso.png",
    "fig3_coronal_iso.png",
    "fig_s3_confusion.png",
    "tuning_ablation_history.png",
    "tuning_ablation_importance.png",
}


@pytest.fixture(scope="module")
def built(fabricated: Fabricated, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report_page")
    client = MlflowClient(fabricated.uri)
    exp = client.get_experiment_by_name(fabricated.experiment)
    target = client.create_run(exp.experiment_id, tags={"ssmoe.step": "quickstart"}).info.run_id
    build_report(
        out, experiment=fabricated.experiment, root_run=fabricated.root_run,
        tracking_uri=fabricated.uri, log_to_run=target,
    )  # fmt: skip
    (out / "target").write_text(target)
    return out


def _pngs(folder: Path) -> set[str]:
    return {p.name for p in (folder / "figures").glob("*.png")}


def test_every_figure_exists_and_is_referenced(built: Path) -> None:
    page = parse_page(built / "index.html")
    files = _pngs(built)
    assert EXPECTED_FIGURES <= files
    assert any(f.startswith("scores_") for f in files)  # phase-1 scores via the lineage
    assert set(page.images) == {f"figures/{f}" for f in files}
    for src in page.images:
        assert not Path(src).is_absolute()
        data = (built / src).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    assert (built / "report.css").exists()
    for link in page.links:
        if link.startswith(("tables/", "figures/")):
            assert (built / link).exists(), link


def test_no_section_is_missing_on_a_complete_store(built: Path) -> None:
    html = (built / "index.html").read_text()
    assert "not available" not in html and "failed to build" not in html


def test_log_to_run_uploads_the_folder(built: Path, fabricated: Fabricated) -> None:
    client = MlflowClient(fabricated.uri)
    target = (built / "target").read_text()
    top = {a.path for a in client.list_artifacts(target, "report")}
    assert {"report/index.html", "report/report.css", "report/figures", "report/tables"} <= top
    figs = {Path(a.path).name for a in client.list_artifacts(target, "report/figures")}
    assert figs == _pngs(built)
    tables = {Path(a.path).name for a in client.list_artifacts(target, "report/tables")}
    assert {"table1.csv", "table2.csv", "table_s1_aniso.csv"} <= tables


def test_missing_sections_degrade_gracefully(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("sparse", artifact_location=(tmp_path / "a").as_uri())
    # One fold of one task, without coronal/confusion/wilcoxon artifacts; no tuning.
    run = client.create_run(exp, tags={"ssmoe.step": "evaluate"}).info.run_id
    for name, value in {"task": "iso", "test_subject": "s1", "k": "4", "segmenter": "mqs"}.items():
        client.log_param(run, name, value)
    for method in ("cubic", "unet", "hardmoe", "ssmoe"):
        for stat in ("average", "variance", "min", "q1", "median", "q3", "max"):
            client.log_metric(run, f"{stat}_{method}", 1.0)
    client.set_terminated(run)
    page_path = build_report(tmp_path / "out", experiment="sparse", tracking_uri=uri)
    page = parse_page(page_path)
    sections = page.sections
    assert "not available (no runs of kind tune)" in sections["tuning"]
    assert "wilcoxon.csv" in sections["table_s1"] and "not available" in sections["table_s1"]
    assert "not available" in sections["fig3"] and "not available" in sections["fig1"]
    assert "more than one K" in sections["table2"]
    assert "failed to build" not in page_path.read_text()
    # One fold: the mean is shown without a std.
    assert page.tables["table1"][0][2].text == "1.000"
    assert _pngs(tmp_path / "out") == set()


def test_empty_experiment_and_unknown_names(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("empty", artifact_location=(tmp_path / "a").as_uri())
    page = parse_page(build_report(tmp_path / "out", experiment="empty", tracking_uri=uri))
    assert "not available (no runs of kind evaluate)" in page.sections["table1"]
    with pytest.raises(ValueError, match="'nope'"):
        build_report(tmp_path / "out", experiment="nope", tracking_uri=uri)
    with pytest.raises(ValueError, match="root run"):
        build_report(tmp_path / "out", experiment="empty", tracking_uri=uri, root_run="0" * 32)


def test_cli_prints_the_index_path(fabricated: Fabricated, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        main,
        ["report", "--experiment", fabricated.experiment, "--root-run", fabricated.root_run,
         "--out", str(out), "--tracking-uri", fabricated.uri],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out / "index.html")
    bad = CliRunner().invoke(main, ["report", "--experiment", "nope", "--out", str(out),
                                    "--tracking-uri", fabricated.uri])  # fmt: skip
    assert bad.exit_code != 0 and "nope" in bad.output
