"""The packed engine: K trials of one model structure trained as one program, each exactly as `fit` trains it
alone (both obey `training/rules.py`).

`stacked.py` stacks K models' weights and runs them under vmap, `stacked_adam.py` steps them as K Adams,
`slot.py` is one trial in a pack and its checkpoint, `pack.py` trains the slots an epoch at a time and `fit.py`
runs a pack to the end. Callers import these names from `adamtune.training`."""

from .fit import fit_packed, packed_params, unpackable
from .pack import Pack
from .slot import SlotOutcome, shared_settings, structure_key
from .stacked import UnpackableError

__all__ = ["Pack", "SlotOutcome", "UnpackableError", "fit_packed", "packed_params", "shared_settings",
           "structure_key", "unpackable"]
