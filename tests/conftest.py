import os

import numpy as np
import pytest
import torch

# Deterministic, and polite on a 2-core CI machine.
# One thread: the suite is mostly small tensors, where intra-op threads only add contention.
torch.set_num_threads(int(os.environ.get("OPTDSL_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    yield
