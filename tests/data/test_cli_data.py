"""`ssmoe simulate`, `ssmoe info`, `ssmoe preview`: outputs and clean errors."""

from __future__ import annotations

import matplotlib.image as mpimg
from click.testing import CliRunner

from ssmoe.cli import main


def test_simulate_info_preview(tmp_path):
    runner = CliRunner()
    out = tmp_path / "d"
    args = ["simulate", "--out", str(out), "--subjects", "2", "--protocol", "tiny"]
    r = runner.invoke(main, [*args, "--shape", "32", "32", "24", "--seed", "5"])
    assert r.exit_code == 0, r.output
    assert "wrote 2 subjects" in r.output
    r = runner.invoke(main, ["info", str(out), "--validate"])
    assert r.exit_code == 0, r.output
    for text in ("cdmri0011", "cdmri0012", "32x32x24", "16x16x12", "5x5x5", "3000", "finite"):
        assert text in r.output
    png = tmp_path / "p.png"
    r = runner.invoke(main, ["preview", str(out), "--out", str(png), "--subject", "cdmri0012"])
    assert r.exit_code == 0, r.output
    img = mpimg.imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 600


def test_errors_are_clean(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["info", str(tmp_path / "missing")])
    assert r.exit_code == 1
    assert "Error:" in r.output and "does not exist" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(main, ["simulate", "--out", str(tmp_path), "--shape", "8", "8", "8"])
    assert r.exit_code == 1 and "shape" in r.output and "Traceback" not in r.output
