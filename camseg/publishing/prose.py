"""Sentences built from numbers, worded so that they never contradict the numbers they quote.

Every sentence the book and the PDF generate from two numbers goes through
:func:`compare`, which says how the two relate *as printed*:

* ``"same"``: they print the same (at ``digits`` decimals), so the sentence says
  "the same", never "from 0.994 to 0.994" or "within 0.000";
* ``"within noise"``: they differ by less than ``sd`` (the spread over
  classifier seeds, or a sampling error), so the sentence says "within noise"
  and gives the spread, never "rises" or "falls";
* ``"higher"``/``"lower"``: a difference at least as large as ``sd`` (or any
  printed difference when no ``sd`` is known).

The differences quoted are those of the printed numbers, so a reader who
subtracts them gets the figure the sentence gives. :func:`change` and
:func:`gap` are the two phrasings every generated sentence uses.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RELATIONS", "Comparison", "change", "compare", "gap", "num", "pm"]

RELATIONS: tuple[str, ...] = ("same", "within noise", "higher", "lower")
"""What :attr:`Comparison.relation` can be."""


def num(x: float, digits: int = 3) -> str:
    """A number as the prose prints it.

    >>> num(0.99449), num(-0.0001), num(12.34, 1)
    ('0.994', '0.000', '12.3')
    """
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def pm(mean: float, sd: float | None, digits: int = 3) -> str:
    """``mean ± sd`` with narrow no-break spaces (it never wraps); the mean alone without an sd.

    >>> pm(0.9123, 0.0104), pm(0.5, None)
    ('0.912\\u202f±\\u202f0.010', '0.500')
    """
    return num(mean, digits) if sd is None else f"{num(mean, digits)}\u202f±\u202f{num(sd, digits)}"


@dataclass(frozen=True)
class Comparison:
    """How ``a`` relates to ``b`` as printed at ``digits`` decimals, given a noise scale ``sd``.

    Attributes:
        a: the number compared.
        b: the number it is compared with.
        sd: the noise scale (a spread over seeds, a sampling error), or None when unknown.
        digits: decimals printed.
    """

    a: float
    b: float
    sd: float | None = None
    digits: int = 3

    @property
    def delta(self) -> float:
        """``a - b`` of the printed numbers (so it agrees with what a reader subtracts)."""
        return round(float(num(self.a, self.digits)) - float(num(self.b, self.digits)), self.digits)

    @property
    def relation(self) -> str:
        """``"same"``, ``"within noise"``, ``"higher"`` (a above b) or ``"lower"``."""
        if num(self.a, self.digits) == num(self.b, self.digits):
            return "same"
        if self.sd is not None and self.sd == self.sd and abs(self.delta) < self.sd:
            return "within noise"
        return "higher" if self.delta > 0 else "lower"

    @property
    def differs(self) -> bool:
        """True when the difference is at least the noise (``"higher"`` or ``"lower"``)."""
        return self.relation in ("higher", "lower")

    @property
    def size(self) -> str:
        """``|a - b|`` as printed."""
        return num(abs(self.delta), self.digits)


def compare(a: float, b: float, sd: float | None = None, digits: int = 3) -> Comparison:
    """How ``a`` relates to ``b`` (see :class:`Comparison`).

    >>> compare(0.9941, 0.9938).relation, compare(0.990, 0.994, sd=0.005).relation
    ('same', 'within noise')
    >>> compare(0.90, 0.95, sd=0.01).relation, compare(0.95, 0.90, sd=0.01).relation
    ('lower', 'higher')
    """
    return Comparison(float(a), float(b), None if sd is None else float(sd), digits)


def _noise(c: Comparison, noise: str) -> str:
    return f"less than {noise}, {num(c.sd, c.digits)}" if c.sd is not None else noise


def change(before: float, after: float, sd: float | None = None, what: str = "the IoU", digits: int = 3,
           noise: str = "one seed-sd") -> str:
    """A verb phrase for what a change does to ``what``: "raises the IoU from 0.900 to 0.950".

    >>> change(0.994, 0.9942)
    'leaves the IoU the same (0.994)'
    >>> change(0.990, 0.993, sd=0.004)
    'moves the IoU only within noise (0.990 → 0.993, less than one seed-sd, 0.004)'
    >>> change(0.90, 0.95, sd=0.01), change(0.95, 0.90)
    ('raises the IoU from 0.900 to 0.950', 'lowers the IoU from 0.950 to 0.900')
    """
    c = compare(after, before, sd, digits)
    a, b = num(before, digits), num(after, digits)
    return {"same": f"leaves {what} the same ({b})",
            "within noise": f"moves {what} only within noise ({a} → {b}, {_noise(c, noise)})",
            "higher": f"raises {what} from {a} to {b}",
            "lower": f"lowers {what} from {a} to {b}"}[c.relation]


def gap(value: float, reference: float, sd: float | None = None, name: str = "the oracle click",
        digits: int = 3, noise: str = "one seed-sd") -> str:
    """A phrase placing ``value`` against ``reference`` (what follows "is" or "are").

    >>> gap(0.9941, 0.9944, name="a perfect click")
    'the same as a perfect click (0.994)'
    >>> gap(0.991, 0.994, sd=0.004)
    'within noise of the oracle click (0.994; the difference, 0.003, is less than one seed-sd, 0.004)'
    >>> gap(0.757, 0.996), gap(0.80, 0.75, sd=0.01)
    ('0.239 below the oracle click (0.996)', '0.050 above the oracle click (0.750)')
    """
    c = compare(value, reference, sd, digits)
    ref = num(reference, digits)
    return {"same": f"the same as {name} ({ref})",
            "within noise": f"within noise of {name} ({ref}; the difference, {c.size}, is {_noise(c, noise)})",
            "higher": f"{c.size} above {name} ({ref})",
            "lower": f"{c.size} below {name} ({ref})"}[c.relation]
