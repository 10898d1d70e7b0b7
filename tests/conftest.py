import numpy as np
import pandas as pd
import pytest

# reference scripts run in peer environments (balance), not under pytest
collect_ignore = ["balance_reference", "ebal_reference"]


@pytest.fixture
def survey():
    """A small survey-like frame with correlated categorical columns."""
    rng = np.random.default_rng(0)
    n = 400
    age = rng.choice(["18-34", "35-54", "55+"], size=n, p=[0.5, 0.3, 0.2])
    sex = np.where(rng.random(n) < np.where(age == "18-34", 0.65, 0.45), "F", "M")
    region = rng.choice(["north", "south", "east", "west"], size=n)
    return pd.DataFrame({"age": age, "sex": sex, "region": region,
                         "y": rng.normal(size=n)})


@pytest.fixture
def survey_targets():
    return {
        "age": {"18-34": 0.3, "35-54": 0.4, "55+": 0.3},
        "sex": {"F": 0.52, "M": 0.48},
        "region": {"north": 0.1, "south": 0.2, "east": 0.3, "west": 0.4},
    }
