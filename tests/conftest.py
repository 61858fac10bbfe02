import pytest
import torch

# Test models are tiny: one thread is fastest, and it keeps the suite quick on a busy machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
