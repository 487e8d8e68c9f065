import os

import numpy as np
import pytest
import torch

# Deterministic, and polite on a 2-core CI machine.
torch.set_num_threads(int(os.environ.get("OPTDSL_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    yield
