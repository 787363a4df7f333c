from __future__ import annotations

import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.reuse.objectives import COMPONENTS, name_of, sub_objectives, weights_of


def test_names_and_weights_round_trip() -> None:
    assert weights_of("path+gold+hazard").tolist() == [1, 1, 1, 0]
    assert weights_of("lever+path").tolist() == [1, 0, 0, 1]
    assert weights_of("1,0.5,0,2").tolist() == [1, 0.5, 0, 2]
    assert weights_of([0, 0, 1, 0]).tolist() == [0, 0, 1, 0]
    assert name_of(weights_of("gold+lever")) == "gold+lever"
    assert [name for name, _ in sub_objectives(weights_of("path+lever"))] == ["path", "lever"]


@pytest.mark.parametrize("objective, message", [
    ("path+silver", "unknown component 'silver'"),
    ("", "empty objective"),
    ("path+", "empty component"),
    ([], "empty objective"),
    ("1,2", "2 weights but there are 4 components"),
    ([1, 0, 0, 0, 1], "5 weights"),
    ([0, 0, 0, 0], "all zero"),
    ("gold+gold", "repeated"),
])
def test_bad_objectives_say_what_is_valid(objective: object, message: str) -> None:
    with pytest.raises(CeilingError, match=message) as info:
        weights_of(objective)  # type: ignore[arg-type]
    if "component" in message or "weights" in message:
        assert any(name in str(info.value) for name in COMPONENTS)


def test_weights_are_float_vectors() -> None:
    w = weights_of("path")
    assert w.dtype == np.float64 and w.shape == (len(COMPONENTS),)
