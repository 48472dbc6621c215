"""How many trials a worker trains at once: `pack: K` as asked, or `pack: auto` (the default), which packs
whatever model can be packed and sizes K from the budget, the model and the device.

On a CPU `auto` trains one trial at a time: there packs of searched trials finished 1.5x to 4x the trials but
found worse values than the solo worker at equal wall time and at equal trial counts, on four of five held-out
seeds of the digits study (benchmarks/RESULTS.md, search_quality); `--pack K` still packs. Elsewhere (a GPU,
where a pack is one program for every width, activation and batch size) `auto`'s K, each bound with its
reason:
- budget: at most a quarter of the study's trials run at once, so the sampler learns from at least four
  rounds of finished trials before the budget is spent (a pack of all 20 trials would be 20 random ones);
- memory: each trial's weights, gradient, Adam's moments and best weights take at most half the free memory;
- AUTO_MAX trials in all (the best K measured for digits on the CPU; more only adds memory).
"""

from __future__ import annotations

import logging

from adamtune.data import free_memory

from ._packed import widest
from ._prepare import probe_values
from ._spec import AUTO, StudySpec

log = logging.getLogger("adamtune")
AUTO_MAX = 64
ROUNDS = 4  # rounds of trials the budget allows at least
SLOT_COPIES = 8  # weights, gradient, three Adam moments, best weights, checkpoint copy, headroom (float32 each)


def pack_size(spec: StudySpec, size: int | str, budget: int, data, device) -> tuple[int, str | None]:
    """`size` (or auto's choice), or 1 when the model cannot be stacked (said here, once, with the reason);
    with auto, what it chose and why, for the caller to say once the study is joined."""
    if size == 1:
        return 1, None
    from adamtune.training import packed_params, unpackable

    values = probe_values(spec)[0]
    cfg = spec.config_for(values, seed=spec.seed)
    reason = unpackable(data, cfg, values, device=device, model_source=spec.model_source)
    if reason:
        log.warning("model %s cannot be packed: %s; this worker trains one trial at a time", spec.model, reason)
        return 1, None
    if size != AUTO:
        return int(size), None
    per_slot = packed_params(data, cfg, values, device=device, model_source=spec.model_source, width=widest(spec))
    chosen, why = auto_size(per_slot, budget, device.type, free_memory(device))
    said = "one trial at a time" if chosen == 1 else f"{chosen} trials at once"
    return chosen, f"pack: auto trains {said} ({why})"


def auto_size(per_slot: int, budget: int, device_type: str, free: int | None) -> tuple[int, str]:
    """K for a model of `per_slot` parameters (at the space's widest), and the bound that chose it."""
    if device_type == "cpu":
        return 1, ("on a CPU, packs of searched trials found worse values than one trial at a time at equal "
                   "wall time: benchmarks/RESULTS.md; --pack K packs anyway")
    bounds = {f"a quarter of the {budget} trials": max(1, budget // ROUNDS),
              f"at most {AUTO_MAX}": AUTO_MAX}
    if free is not None:
        bounds["half the device's free memory"] = max(1, free // 2 // (per_slot * 4 * SLOT_COPIES))
    why = min(bounds, key=bounds.__getitem__)
    return bounds[why], f"bound by {why}"
