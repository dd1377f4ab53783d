"""Model families by task, behind one registry (``create_model``, ``list_models``), and
:func:`convolutionalize` (a classifier's fully connected head as convolutions, see
:mod:`cvlib.models.convert`)."""

from cvlib.models import transfer  # freeze, replace_head, finetune_param_groups, freeze_bn
from cvlib.models._registry import create_model, list_models, model_task, register_model
from cvlib.models.convert import ConvolutionalizedNet, convolutionalize, fc_to_conv

__all__ = [
    "create_model",
    "list_models",
    "model_task",
    "register_model",
    "convolutionalize",
    "fc_to_conv",
    "ConvolutionalizedNet",
    "transfer",
]
