"""Multi-step forms (the add-user wizard) whose steps can be added without touching the others.

Every step owns some form fields and a template that shows them. The values of every step travel with
each request (the other steps' as hidden inputs), so nothing is stored between steps and Back never
loses what was typed. The one service action runs on the final submit; its field errors bring the
wizard back to the step that owns the first field in error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from occupant.web.forms import Form


def _always(_subject: Any) -> bool:
    return True


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    template: str
    fields: tuple[str, ...]
    multi: frozenset[str] = frozenset()  # fields with several values (checkbox lists)
    applies: Callable[[Any], bool] = _always  # whether the step is shown for this subject


@dataclass
class WizardView:
    """What the wizard template needs: the steps shown, the current one, and every value and error."""

    steps: list[Step]
    current: Step
    form: Form
    hidden: list[tuple[str, str]] = field(default_factory=list)

    @property
    def index(self) -> int:
        return self.steps.index(self.current)

    @property
    def is_first(self) -> bool:
        return self.index == 0

    @property
    def is_last(self) -> bool:
        return self.index == len(self.steps) - 1

    def step_has_errors(self, step: Step) -> bool:
        return any(name in self.form.errors for name in step.fields)


class Wizard:
    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps: list[Step] = list(steps)

    def add_step(self, step: Step, *, after: str | None = None) -> None:
        """Register a further step (Wi-Fi, account, telephony...), after the step ``after`` or last."""
        if any(s.key == step.key for s in self.steps):
            raise ValueError(f"wizard step {step.key!r} already exists")
        position = len(self.steps)
        if after is not None:
            position = next(i for i, s in enumerate(self.steps) if s.key == after) + 1
        self.steps.insert(position, step)

    def active(self, subject: Any) -> list[Step]:
        return [s for s in self.steps if s.applies(subject)]

    def read(self, form: FormData, steps: Sequence[Step]) -> dict[str, Any]:
        """Every active step's values from the posted form (strings, or lists for multi-valued fields)."""
        values: dict[str, Any] = {}
        for step in steps:
            for name in step.fields:
                if name in step.multi:
                    values[name] = [v for v in form.getlist(name) if isinstance(v, str)]
                else:
                    raw = form.get(name)
                    values[name] = raw.strip() if isinstance(raw, str) else ""
        return values

    def step_named(self, steps: Sequence[Step], key: str | None) -> Step:
        return next((s for s in steps if s.key == key), steps[0])

    def step_with_errors(self, steps: Sequence[Step], form: Form, default: Step) -> Step:
        """The first step owning a field in error (errors on unknown fields stay on ``default``)."""
        return next((s for s in steps if any(name in form.errors for name in s.fields)), default)

    def neighbour(self, steps: Sequence[Step], current: Step, delta: int) -> Step:
        index = min(max(steps.index(current) + delta, 0), len(steps) - 1)
        return steps[index]

    def view(self, steps: Sequence[Step], current: Step, form: Form) -> WizardView:
        hidden: list[tuple[str, str]] = []
        for step in steps:
            if step is current:
                continue
            for name in step.fields:
                value = form.values.get(name)
                for item in value if isinstance(value, list) else [value]:
                    if item not in (None, ""):
                        hidden.append((name, str(item)))
        return WizardView(steps=list(steps), current=current, form=form, hidden=hidden)
