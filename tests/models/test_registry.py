import pytest
from torch import nn

from cvlib.models import _registry, create_model, list_models, register_model


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))


def test_register_create_and_list(clean_registry):
    @register_model(task="classification")
    def toy_net_for_registry_test(*, num_classes: int = 3) -> nn.Module:
        return nn.Linear(4, num_classes)

    assert "toy_net_for_registry_test" in list_models("toy_*")
    assert list_models("toy_*", task="detection") == []
    model = create_model("toy_net_for_registry_test", num_classes=5, weights=None)  # None is dropped
    assert model.out_features == 5


def test_duplicate_name_is_rejected(clean_registry):
    @register_model(task="classification")
    def dup_name_model() -> nn.Module:
        return nn.Identity()

    with pytest.raises(ValueError, match="'dup_name_model' is registered already"):
        register_model(task="classification")(dup_name_model)


def test_unknown_task_and_name():
    with pytest.raises(ValueError, match="task must be one of"):
        register_model(task="regression")
    with pytest.raises(ValueError, match="task must be one of"):
        list_models(task="regression")
    with pytest.raises(ValueError, match="unknown model 'no_such_model_xyz'"):
        create_model("no_such_model_xyz")


def test_unknown_name_suggests_close_names(clean_registry):
    @register_model(task="classification")
    def resnet_registry_probe() -> nn.Module:
        return nn.Identity()

    with pytest.raises(ValueError, match="did you mean resnet_registry_probe"):
        create_model("resnet_registry_prob")
