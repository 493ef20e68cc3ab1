"""Units of exported arrays, derived from the units a problem declares (``Problem.units``).

A problem declares units by name (``units={"x": "m", "y": "m", "t": "s", "u": "K"}``); an
exported array takes:

- ``u``, ``u_exact``, ``u_error``: the field's unit;
- ``grad_u``: the field's unit over the spatial coordinates' unit (``"K/m"``), or, when the
  spatial coordinates have different units, one unit per component, in coordinate order
  (``("K/m", "K/km")``);
- ``residual_<equation>``: the equation's unit, when declared.

An array whose unit cannot be derived (a field or coordinate without a declared unit) has
none. The unit ``"1"`` is dimensionless: ``"K"`` over ``"1"`` is ``"K"``, ``"1"`` over ``"m"``
is ``"1/m"``. A compound denominator is parenthesised (``"K/(m/s)"``); a numerator needs no
parentheses, since units are read from left to right (``"m/s/m"`` is ``(m/s)/m``, as in
UDUNITS and CF).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "Unit",
    "array_units",
    "coordinate_units",
    "label",
    "quotient",
    "set_units",
    "units_table",
]

Unit = str | tuple[str, ...]
_SIMPLE = re.compile(r"[^\s/*.()^]+(\^?-?\d+)?")


def quotient(numerator: str, denominator: str) -> str:
    """The unit ``numerator / denominator`` as text (``quotient("K", "m") == "K/m"``)."""
    if denominator == "1":
        return numerator
    if not _SIMPLE.fullmatch(denominator):
        denominator = f"({denominator})"
    return f"{numerator}/{denominator}"


def _gradient_unit(unit: str, spatial: Sequence[str | None]) -> Unit | None:
    if not spatial or any(u is None for u in spatial):
        return None
    parts = tuple(quotient(unit, u) for u in spatial)
    return parts[0] if len(set(parts)) == 1 else parts


def array_units(problem, names: Iterable[str]) -> dict[str, Unit]:
    """Units of the exported arrays ``names`` (see :func:`kanphys.io.export.available_fields`)
    that have one; a tuple (one unit per spatial coordinate) for a gradient whose coordinates
    have different units."""
    declared: Mapping[str, str] = problem.units
    time_index = problem.time_index
    spatial = [declared.get(c) for i, c in enumerate(problem.coordinates) if i != time_index]
    out: dict[str, Unit] = {}
    for name in problem.fields:
        unit = declared.get(name)
        if unit is None:
            continue
        out[name] = out[f"{name}_exact"] = out[f"{name}_error"] = unit
        gradient = _gradient_unit(unit, spatial)
        if gradient is not None:
            out[f"grad_{name}"] = gradient
    for name in problem.equations:
        if name in declared:
            out[f"residual_{name}"] = declared[name]
    wanted = set(names)
    return {name: unit for name, unit in out.items() if name in wanted}


def coordinate_units(problem, names: Sequence[str]) -> list[str] | None:
    """Units of the coordinates ``names`` in order (``""`` where undeclared); None if none
    is declared."""
    units = [problem.units.get(name, "") for name in names]
    return units if any(units) else None


def label(unit: Unit) -> str:
    """One string for a unit: per-component units joined by ``", "`` (VTK's UNITS_LABEL)."""
    return unit if isinstance(unit, str) else ", ".join(unit)


def set_units(dataset, unit: Unit | None) -> None:
    """The CF-style attribute ``units`` on an h5py dataset: a string, or a list of strings
    (one per component); nothing when ``unit`` is None."""
    if unit is not None:
        dataset.attrs["units"] = unit if isinstance(unit, str) else list(unit)


def units_table(problem, names: Iterable[str]) -> dict[str, Unit]:
    """Declared units of the problem's coordinates, then :func:`array_units` of ``names``."""
    coordinates = {c: problem.units[c] for c in problem.coordinates if c in problem.units}
    return {**coordinates, **array_units(problem, names)}
