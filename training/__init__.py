"""Data on the device, models, batched augmentation and the one training loop every trial uses."""

from .config import TrainConfig
from .data import DATASETS, Dataset, Split, load_dataset
from .errors import ConfigError, DataError, DivergedError
from .loop import EpochRecord, FitResult, evaluate, fit, pick_device

__all__ = ["DATASETS", "ConfigError", "DataError", "Dataset", "DivergedError", "EpochRecord", "FitResult",
           "Split", "TrainConfig", "evaluate", "fit", "load_dataset", "pick_device"]
