"""benchmarks/compass_latents.py, the script behind the COMPASS sections of BENCHMARKS.md:
its diagnostics agree with each other and with the base policy they are measured against."""

from __future__ import annotations

import pytest

from ceiling.policies.shipped import shipped_checkpoint
from tests.bench.scripts import load_benchmark

TASK = "connector:con-5x5x3a"


@pytest.mark.slow
def test_latent_diagnostics_of_a_shipped_compass_checkpoint(capsys, monkeypatch) -> None:
    script = load_benchmark("compass_latents")
    measure, measured = script.measure, []  # what main() measured, kept to look inside

    def keep(*args):
        measured.append(measure(*args))
        return measured[-1]

    monkeypatch.setattr(script, "measure", keep)
    script.main(["--checkpoint", str(shipped_checkpoint(TASK, "compass")), "--instances", "4",
                 "--latents", "4"])
    assert "| best of 4 latents, arg-max |" in capsys.readouterr().out
    result = measured[0]
    rows = {name: mean for name, (mean, _, _) in result["rows"].items()}
    assert result["task"] == TASK and result["instances"] == 4 and result["latents"] == 4
    # The trunk is frozen and the latent map has no bias: z = 0 is the base's greedy policy.
    assert rows["z = 0"] == pytest.approx(rows["base greedy"], abs=1e-5)
    assert abs(result["z0_vs_base_percent"]) < 1e-3
    # The best of the latents is at least their mean; the paired row is the two rows' gap.
    assert rows["best of 4 latents, arg-max"] >= rows["mean latent"]
    assert rows["best latent − base's best sample (paired)"] == pytest.approx(
        rows["best of 4 latents, arg-max"] - rows["base: best of 4 samples"], abs=1e-5)
    assert 0.0 <= result["tie_share"] <= 1.0


def test_a_checkpoint_without_latents_is_refused() -> None:
    script = load_benchmark("compass_latents")
    with pytest.raises(SystemExit, match="not a COMPASS"):
        script.measure(str(shipped_checkpoint(TASK, "mappo")), None, 2, 2)
    with pytest.raises(SystemExit):
        script.main(["--checkpoint", str(shipped_checkpoint(TASK, "compass")), "--latents", "1"])
