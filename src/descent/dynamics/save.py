"""`SaveAt`: what a run keeps. Memory grows with what is saved, not with the number of steps.

- ``SaveAt(every=k)``: the state every k steps (and the last one);
- ``SaveAt(steps=(0, 10, 100))``: the state at given steps (and the last one);
- ``SaveAt.summary()``: only the start and the final state, the event steps and the running minimum
  of the loss.

Before a run starts, the bytes it will hold (saved frames, probe records, working state, and what the
process holds already) are estimated; a request over the budget (half of the machine's memory unless
given) is refused with the estimate and the option that fixes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from descent._errors import DescentError, invalid


@dataclass(frozen=True)
class SaveAt:
    """Which states to keep: every ``every`` steps and/or at ``steps``; neither: the summary only.
    ``SaveAt()`` keeps every step; ``SaveAt(steps=...)`` only those steps (and the first and last).

    >>> SaveAt(every=10).frame_steps(25)
    [0, 10, 20, 25]
    >>> SaveAt.summary().frame_steps(1000)
    [0, 1000]
    """

    every: int | None = -1  # -1: every step, unless steps are given
    steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.every == -1 and not isinstance(self.every, bool):
            object.__setattr__(self, "every", None if self.steps else 1)
        if self.every is not None:
            if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
                raise invalid("save.every", self.every, "an integer >= 1")
        steps = tuple(self.steps)
        for k in steps:
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise invalid("save.steps", k, "integers >= 0")
        object.__setattr__(self, "steps", tuple(sorted(set(steps))))

    @classmethod
    def summary(cls) -> SaveAt:
        return cls(every=None)

    @property
    def is_summary(self) -> bool:
        return self.every is None and not self.steps

    def wants(self, k: int) -> bool:
        return (self.every is not None and k % self.every == 0) or k in self._step_set

    @property
    def _step_set(self) -> frozenset[int]:
        return frozenset(self.steps)

    def frame_steps(self, total: int) -> list[int]:
        """The steps saved by a run of ``total`` steps that is not stopped early: 0, the wanted ones,
        and the last."""
        wanted = set(range(0, total + 1, self.every)) if self.every is not None else set()
        wanted |= {k for k in self.steps if k <= total}
        return sorted(wanted | {0, total})

    def frame_count(self, total: int) -> int:
        """len(frame_steps(total)), without building the list."""
        count = total // self.every + 1 if self.every is not None else 1
        extra = {k for k in self.steps if k <= total and (self.every is None or k % self.every)}
        last = (
            0 if total == 0 or (self.every is not None and total % self.every == 0) or total in extra else 1
        )
        return count + len(extra) + last

    # --- text and JSON forms --------------------------------------------------------------------------
    def to_text(self) -> str:
        if self.is_summary:
            return "summary"
        parts = [f"every:{self.every}"] if self.every is not None else []
        if self.steps:
            parts.append("steps:" + ",".join(str(k) for k in self.steps))
        return ";".join(parts)

    @classmethod
    def parse(cls, text: str) -> SaveAt:
        """``summary``, ``every:K``, ``steps:0,10,100`` or both joined by ``;``."""
        allowed = "'summary', 'every:K', 'steps:K1,K2,...' or 'every:K;steps:...'"
        text = str(text).strip()
        if text == "summary":
            return cls.summary()
        every: int | None = None
        steps: tuple[int, ...] = ()
        for part in filter(None, (p.strip() for p in text.split(";"))):
            kind, _, value = part.partition(":")
            try:
                if kind == "every":
                    every = int(value)
                elif kind == "steps":
                    steps = tuple(int(v) for v in value.split(","))
                else:
                    raise ValueError
            except ValueError:
                raise invalid("save", text, allowed) from None
        if every is None and not steps:
            raise invalid("save", text, allowed)
        return cls(every=every, steps=steps)


def machine_memory() -> int:
    """Total physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def resident_bytes() -> int:
    """This process's resident memory now (the interpreter, torch and what is already loaded)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: count nothing
        return 0


def default_budget() -> int:
    """Half of the machine's memory."""
    return machine_memory() // 2


def frame_bytes(n: int, dim: int, itemsize: int) -> int:
    """Bytes of one saved frame: position and displacement (d numbers each) and loss per particle."""
    return n * (2 * dim + 1) * itemsize


def working_bytes(n: int, dim: int, itemsize: int, state_tensors: int) -> int:
    """Bytes of the working state: position, gradient, update, their new values, the rule's state
    tensors and temporaries (about 12 + state tensors of [N, d]) and per-particle records (~12 [N])."""
    return (12 + state_tensors) * n * dim * itemsize + 12 * n * 8


def check_budget(
    save: SaveAt, steps: int, frames: int, per_frame: int, fixed: int, budget: int, particles: int
) -> int:
    """The run's estimate in bytes (``frames * per_frame + fixed``); refuse it, naming the option
    that fixes it, when it exceeds ``budget``."""
    estimate = frames * per_frame + fixed
    if estimate <= budget:
        return estimate
    over = f"this run would hold about {_size(estimate)}"
    limit = f"over the memory budget of {_size(budget)}"
    if fixed + 2 * per_frame > budget:  # even a summary (start and end) would not fit: too many particles
        fits = max(int(particles * budget / (fixed + 2 * per_frame)), 1)
        raise DescentError(
            f"invalid starts={particles} particles: {over} ({frames} saved frames of {_size(per_frame)} "
            f"and {_size(fixed)} of working state), {limit}; expected at most about {fits} particles "
            "or a larger --memory-budget"
        )
    room = (budget - fixed) // max(per_frame, 1)
    hint = "--save summary, fewer particles, or a larger --memory-budget"
    if room >= 3 and steps > 0:
        hint = f"--save every:{-(-steps // (room - 2))} or coarser, " + hint
    raise DescentError(
        f"invalid save={save.to_text()!r}: {over} ({frames} saved frames of {_size(per_frame)}), "
        f"{limit}; expected {hint}"
    )


def _size(n: int) -> str:
    size: float = n
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"
