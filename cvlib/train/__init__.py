"""cvlib.train: one training loop for every chapter, with mixed precision, checkpoints and benchmarks.

``fit`` / ``evaluate`` / ``predict`` live in :mod:`cvlib.train.loop`; device-dependent precision in
:mod:`cvlib.train.amp`; optimizers and schedules in :mod:`cvlib.train.optim`; checkpoints in
:mod:`cvlib.train.checkpoint`; the data path in :mod:`cvlib.train.data`; knowledge distillation
(Hinton et al. 2015, arXiv:1503.02531) in :mod:`cvlib.train.distill`.
"""

from cvlib.runtime import fast_dev_run, get_device, run_on
from cvlib.train.amp import autocast_for, grad_scaler_for, use_channels_last
from cvlib.train.checkpoint import CheckpointError, load_checkpoint, load_or_train, save_checkpoint
from cvlib.train.data import detection_collate
from cvlib.train.distill import Distiller, kd_loss
from cvlib.train.loop import History, default_loss, evaluate, fit, predict
from cvlib.train.optim import create_optimizer, create_scheduler, param_groups

__all__ = [
    "CheckpointError",
    "Distiller",
    "History",
    "autocast_for",
    "create_optimizer",
    "create_scheduler",
    "default_loss",
    "detection_collate",
    "evaluate",
    "fast_dev_run",
    "fit",
    "get_device",
    "grad_scaler_for",
    "kd_loss",
    "load_checkpoint",
    "load_or_train",
    "param_groups",
    "predict",
    "run_on",
    "save_checkpoint",
    "use_channels_last",
]
