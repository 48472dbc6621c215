"""`pack: auto`: how many trials a worker trains at once, from the budget, the model's size and the device."""

from __future__ import annotations

from adamtune.studies._pack_size import AUTO_MAX, auto_size

GIB = 2**30


def test_on_a_cpu_auto_trains_one_trial_at_a_time_and_says_why():
    k, why = auto_size(40_000, budget=1000, device_type="cpu", free=16 * GIB)
    assert k == 1 and why.startswith("on a CPU, packs of searched trials found worse values")


def test_a_small_budget_is_searched_in_at_least_four_rounds():
    assert auto_size(40_000, budget=20, device_type="cuda", free=16 * GIB) == (
        5, "bound by a quarter of the 20 trials")
    assert auto_size(40_000, budget=7, device_type="cuda", free=16 * GIB)[0] == 1, "fewer than 8 trials: solo"
    assert auto_size(40_000, budget=1000, device_type="cuda", free=16 * GIB) == (
        AUTO_MAX, f"bound by at most {AUTO_MAX}")


def test_free_memory_bounds_the_pack():
    per_slot = 10_000_000  # 40 MB a copy
    k, why = auto_size(per_slot, budget=1000, device_type="cuda", free=GIB)
    assert why == "bound by half the device's free memory" and k * per_slot * 4 * 8 <= GIB // 2
    assert auto_size(per_slot, budget=1000, device_type="cuda", free=1)[0] == 1
