"""Model families by task, behind one registry (``create_model``, ``list_models``)."""

from cvlib.models._registry import create_model, list_models, model_task, register_model

__all__ = ["create_model", "list_models", "model_task", "register_model"]
