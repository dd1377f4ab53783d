import pytest
import torch

import cvlib
from cvlib.runtime import get_device, pick, run_info, seed_everything, size


def test_size_defaults_to_full(monkeypatch):
    monkeypatch.delenv("CVLIB_SIZE", raising=False)
    assert size() == "full" and not cvlib.is_small()
    assert pick(small=1, full=2) == 2


def test_size_small(monkeypatch):
    monkeypatch.setenv("CVLIB_SIZE", " Small ")
    assert size() == "small" and pick(small="s", full="f") == "s"


def test_size_rejects_unknown(monkeypatch):
    monkeypatch.setenv("CVLIB_SIZE", "medium")
    with pytest.raises(ValueError, match=r"CVLIB_SIZE must be one of \('small', 'full'\).*'medium'"):
        size()


def test_get_device_prefers_given_and_rejects_missing_cuda(monkeypatch):
    monkeypatch.delenv("CVLIB_DEVICE", raising=False)
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device("cuda")
    monkeypatch.setenv("CVLIB_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_seed_everything_repeats_random_streams():
    g1 = seed_everything(7)
    a = (torch.rand(3), torch.rand(2, generator=g1))
    g2 = seed_everything(7)
    b = (torch.rand(3), torch.rand(2, generator=g2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(TypeError, match="seed must be an int"):
        seed_everything(1.5)


def test_run_info_names_device_size_and_data(monkeypatch):
    monkeypatch.setenv("CVLIB_SIZE", "small")
    text = run_info("digits", device="cpu")
    lines = text.splitlines()
    assert lines[0].startswith("device: cpu") and "small" in lines[1] and lines[2] == "data:   digits"


def test_run_info_fits_the_book_column():
    text = run_info("a long description of the data set " * 6, device="cpu")
    assert max(len(line) for line in text.splitlines()) <= 88
    assert " ".join(text.split()).count("a long description") == 6


@pytest.mark.parametrize(
    "size, deterministic, expected", [("small", None, True), ("full", None, False), ("full", True, True)]
)
def test_seed_everything_deterministic_only_at_small_size(monkeypatch, size, deterministic, expected):
    monkeypatch.setenv("CVLIB_SIZE", size)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", not expected)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    seed_everything(0, deterministic=deterministic)
    assert torch.backends.cudnn.deterministic is expected
    assert torch.backends.cudnn.benchmark is False
    with pytest.raises(TypeError, match="deterministic must be a bool or None"):
        seed_everything(0, deterministic="yes")


def test_fast_dev_run_reads_the_environment(monkeypatch):
    monkeypatch.delenv("CVLIB_FAST_DEV_RUN", raising=False)
    assert cvlib.fast_dev_run() is None
    monkeypatch.setenv("CVLIB_FAST_DEV_RUN", " 3 ")
    assert cvlib.fast_dev_run() == 3
    monkeypatch.setenv("CVLIB_FAST_DEV_RUN", "0")
    assert cvlib.fast_dev_run() is None
    for bad in ("-1", "two", "1.5"):
        monkeypatch.setenv("CVLIB_FAST_DEV_RUN", bad)
        with pytest.raises(ValueError, match=rf"CVLIB_FAST_DEV_RUN must be an integer >= 1.*'{bad}'"):
            cvlib.fast_dev_run()


def test_run_on_restores_the_mode_and_checks_the_model():
    model = torch.nn.Linear(2, 2).train()
    with cvlib.run_on(model, "cpu", train=False) as dev:
        assert dev == torch.device("cpu") and not model.training
    assert model.training
    empty = torch.nn.ReLU()  # no parameters: nothing to move
    with cvlib.run_on(empty, "cpu") as dev:
        assert dev.type == "cpu"
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        with cvlib.run_on("net"):
            pass
