"""What `auto` optimises is chosen when connecting: OffloadPredictor.connect(objective=...)."""

from __future__ import annotations

import pytest

from sandseg.offload.predictor import OffloadPredictor
from sandseg.predictor import InputError


def test_an_objective_without_its_budget_is_refused_before_anything_loads(tmp_path):
    missing = tmp_path / "never-read.safetensors"
    with pytest.raises(InputError, match="latency budget"):
        OffloadPredictor.connect(None, weights=missing, objective="server")
    with pytest.raises(InputError, match="unknown objective 'cheapest'"):
        OffloadPredictor.connect(None, weights=missing, objective="cheapest")


@pytest.mark.gpu
def test_the_objective_reaches_the_planner(gpu_device, converted_weights):
    predictor = OffloadPredictor.connect(
        None,
        weights=converted_weights,
        mode="client",
        objective="server",
        latency_budget_s=2.5,
    )
    planner = predictor.session.planner
    assert (planner.objective, planner.latency_budget_s) == ("server", 2.5)
