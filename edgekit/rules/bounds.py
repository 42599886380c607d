"""Exact bounds of a file's drop against the reference, and the certificates built on them (:mod:`edgekit.rules`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

CONFIDENCE = 0.95
"""The promise's one-sided confidence (``--confidence``)."""

SELECTION_CONFIDENCE = 0.5
"""The selection split's bar: :func:`paired_upper` with both rates at their median (50 %) Clopper–Pearson
estimates (about 0.7/n when nothing changed). It predicts what certification will accept rather than promising
anything: a file that loses nothing on the selection images holds whenever its certification could pass
(certification's zero-change bound, about 3.7/n at 95 % on a split twice as large, is the larger), and one whose
selection losses already exceed the
budget is backed off before it is exported. A higher bar would reject files that change nothing on small
splits (0 lost of 144 images is 2.1 pp at 95 %)."""

Basis = Literal["labelled", "unlabelled"]


# --------------------------------------------------------------------------- exact bounds

@lru_cache(maxsize=4096)
def upper_rate(k: int, n: int, alpha: float) -> float:
    """The one-sided Clopper–Pearson upper ``1 − alpha`` bound of a binomial rate after ``k`` events in ``n`` trials:
    the p at which P(X ≤ k | n, p) = alpha (exact: it covers the true rate with probability ≥ 1 − alpha)."""
    if n <= 0 or k >= n:
        return 1.0
    if k < 0:
        raise ValueError(f"event count must be ≥ 0, got {k}")
    if k == 0:
        return 1.0 - alpha ** (1.0 / n)
    i = np.arange(k + 1, dtype=np.float64)
    log_choose = math.lgamma(n + 1) - np.array([math.lgamma(j + 1) + math.lgamma(n - j + 1) for j in i])

    def cdf(p: float) -> float:
        terms = log_choose + i * math.log(p) + (n - i) * math.log1p(-p)
        top = terms.max()
        return float(math.exp(top) * np.exp(terms - top).sum())

    lo, hi = k / n, 1.0
    for _ in range(80):  # bisection: cdf falls as p rises
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) > alpha else (lo, mid)
    return hi


def lower_rate(k: int, n: int, alpha: float) -> float:
    """The one-sided Clopper–Pearson lower ``1 − alpha`` bound of a binomial rate (0 after no event)."""
    return 0.0 if n <= 0 or k <= 0 else 1.0 - upper_rate(n - k, n, alpha)


def paired_upper(lost: int, gained: int, n: int, alpha: float) -> float:
    """An exact one-sided ``1 − 2·alpha`` upper bound of the paired drop rate p_lost − p_gained after ``lost`` and
    ``gained`` of ``n`` images: the Clopper–Pearson upper bound of p_lost minus the lower bound of p_gained, each at
    ``alpha`` (both hold together with probability ≥ 1 − 2·alpha, and then so does the difference).

    Monotone by construction: another lost image never lowers it, another gained image never raises it, so a file
    that gains far more than it loses (fine-tuning made it better) is credited. With no discordant image it is
    1 − alpha^(1/n) (about 3.7/n at 95 %); it can be negative when the gains are sure to outweigh the losses."""
    return upper_rate(lost, n, alpha) - lower_rate(gained, n, alpha)


def per_bound_alpha(confidence: float, family: int) -> float:
    """Bonferroni: the error each of ``family`` bounds may have so that all hold together at ``confidence``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return (1.0 - confidence) / max(1, family)


def smallest_budget_pp(n: int, confidence: float = CONFIDENCE, family: int = 1) -> float:
    """The smallest budget (pp) ``n`` images can certify for one of ``family`` bounds: the bound of a file that
    changed nothing, :func:`paired_upper` on ``n`` labelled images or the disagreement bound on ``n`` unlabelled
    ones (each at half the file's error: a file on unlabelled images also keeps a labelled bound)."""
    if n <= 0:
        return 100.0
    alpha = per_bound_alpha(confidence, family)
    return round(upper_rate(0, n, alpha / 2) * 100.0, 3)


def within_budget(drop_pp: float, budget_pp: float) -> bool:
    """A drop (pp against the reference; for choosing, its upper confidence bound) within the budget."""
    return drop_pp <= budget_pp + 1e-9


# --------------------------------------------------------------------------- certificates

@dataclass(frozen=True)
class Certificate:
    """One file's certified drop against the reference, in pp.

    ``drop_pp``: the point drop on the labelled certification images; ``bound_pp``: its exact upper bound, valid
    jointly with the run's other ``family`` bounds at ``confidence``. ``basis`` says which bound it is: ``labelled``
    (``lost`` of ``n`` images) or ``unlabelled`` (``disagreed`` of ``unlabelled`` predictions changed against the
    trained anchor, plus the anchor's own bound ``anchor_bound_pp``); a file that has both keeps the smaller."""

    n: int
    lost: int
    gained: int
    drop_pp: float
    bound_pp: float
    basis: Basis
    confidence: float
    family: int
    unlabelled: int = 0
    disagreed: int = 0
    anchor_bound_pp: float = 0.0

    def verdict(self, budget_pp: float) -> str:
        """The plain sentence (:func:`verdict`)."""
        images = self.unlabelled if self.basis == "unlabelled" else self.n
        return verdict(self.drop_pp, self.bound_pp, budget_pp, images, self.confidence, self.basis)

    def to_dict(self) -> dict[str, Any]:
        out = {"validation_size": self.n, "certification_size": self.n, "drop_pp": self.drop_pp,
               "bound_pp": self.bound_pp, "lost": self.lost, "gained": self.gained, "basis": self.basis,
               "confidence": self.confidence, "family": self.family}
        if self.unlabelled:
            out.update(unlabelled=self.unlabelled, disagreed=self.disagreed, anchor_bound_pp=self.anchor_bound_pp)
        return out


def verdict(drop_pp: float, bound_pp: float, budget_pp: float, images: int, confidence: float = CONFIDENCE,
            basis: Basis = "labelled") -> str:
    """'drop 0.00 pp, but its 95 % upper bound 1.93 pp exceeds the 1 pp budget on 144 images', or
    'drop 0.10 pp, 95 % upper bound 0.62 pp: within the 1 pp budget (800 images)'. Never 'drop 0.00 pp (breaks)'."""
    what = "unlabelled images" if basis == "unlabelled" else "images"
    level = f"{confidence * 100:g} %"
    if within_budget(bound_pp, budget_pp):
        return (f"drop {drop_pp:.2f} pp, {level} upper bound {bound_pp:.2f} pp: within the {budget_pp:g} pp budget "
                f"({images} {what})")
    joint = "but its" if drop_pp <= budget_pp + 1e-9 else "and its"
    return (f"drop {drop_pp:.2f} pp, {joint} {level} upper bound {bound_pp:.2f} pp exceeds the {budget_pp:g} pp "
            f"budget on {images} {what}")


def _labelled(ref_ok: np.ndarray, ok: np.ndarray) -> tuple[int, int, float]:
    lost, gained = int((ref_ok & ~ok).sum()), int((~ref_ok & ok).sum())
    return lost, gained, round((lost - gained) / max(len(ref_ok), 1) * 100.0, 3)


def certify(reference_ok: np.ndarray, correct: Mapping[str, np.ndarray], files: Iterable[str],
            anchors: Mapping[str, str] | None = None, predictions: Mapping[str, np.ndarray] | None = None,
            reference_id: str = "", confidence: float = CONFIDENCE) -> dict[str, Certificate]:
    """Certify each of ``files`` (ids) against the reference (module doc), all bounds jointly at ``confidence``.

    ``reference_ok`` / ``correct[id]``: per labelled certification image, whether the reference / a model is right.
    ``anchors``: for a file made from a trained model by steps that train nothing, that model's id (the reference's
    id when it is the reference); when there are ``predictions`` (id → top-1 class per unlabelled image, the
    anchor's included) such a file gets two bounds, each at half its error: the anchor's bound plus the share of
    unlabelled predictions it changed, and its own labelled bound; it keeps the smaller. Other files are certified on
    the labelled images.
    """
    ref_ok = np.asarray(reference_ok, dtype=bool)
    anchors, predictions = dict(anchors or {}), dict(predictions or {})
    files = list(dict.fromkeys(files))
    chained = {f: anchors[f] for f in files if anchors.get(f) in predictions and f in predictions
               and len(predictions[f]) > 0}
    labelled = {f for f in files if f not in chained} | {a for a in chained.values() if a != reference_id}
    family = len(labelled) + len(chained)
    alpha = per_bound_alpha(confidence, family)
    n = len(ref_ok)

    def lab_bound(aid: str, error: float) -> float:
        lost, gained, _ = _labelled(ref_ok, np.asarray(correct[aid], dtype=bool))
        return round(paired_upper(lost, gained, n, error / 2) * 100.0, 3) if n else 100.0

    out: dict[str, Certificate] = {}
    for f in files:
        lost, gained, drop = _labelled(ref_ok, np.asarray(correct[f], dtype=bool)) if n else (0, 0, 0.0)
        if f not in chained:
            out[f] = Certificate(n, lost, gained, drop, lab_bound(f, alpha), "labelled", confidence, family)
            continue
        anchor = chained[f]
        mine, theirs = np.asarray(predictions[f]), np.asarray(predictions[anchor])
        disagreed = int((mine != theirs).sum())
        base = 0.0 if anchor == reference_id else lab_bound(anchor, alpha)
        unlabelled = max(round(base + upper_rate(disagreed, len(mine), alpha / 2) * 100.0, 3), drop)
        own = lab_bound(f, alpha / 2)
        basis: Basis = "unlabelled" if unlabelled <= own else "labelled"
        out[f] = Certificate(n, lost, gained, drop, min(unlabelled, own), basis, confidence, family,
                             len(mine), disagreed, base)
    return out


def nothing_certified(budget_pp: float, n_labelled: int, n_unlabelled: int, family: int,
                      confidence: float = CONFIDENCE) -> str:
    """One line: why no compressed file could be certified, and what would help."""
    least = min(smallest_budget_pp(n_labelled, confidence, family),
                smallest_budget_pp(n_unlabelled, confidence, family))
    return (f"no compressed file could be certified within the {budget_pp:g} pp budget at {confidence * 100:g} % "
            f"on {n_labelled} labelled and {n_unlabelled} unlabelled certification images ({family} bounds); "
            f"even a file that changed nothing certifies only {least:.2f} pp here: more labelled images, "
            f"--unlabeled-dir, a budget of at least {least:.2f} pp or a lower --confidence would help")


def margin(checks: Mapping[str, Mapping[str, Any]], budget_pp: float, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The report's statement of what this data can certify, from the files' certificates (``to_dict`` forms):
    how many images, how many bounds share the confidence, and the smallest budget a file could be certified at."""
    certs = list(checks.values())
    n = max((int(c.get("certification_size", c.get("validation_size", 0)) or 0) for c in certs), default=0)
    unlabelled = max((int(c.get("unlabelled", 0) or 0) for c in certs), default=0)
    family = max((int(c.get("family", 1) or 1) for c in certs), default=1)
    out: dict[str, Any] = {
        "confidence": confidence, "validation_size": n, "certification_size": n, "unlabelled_size": unlabelled,
        "family": family, "smallest_budget_pp": smallest_budget_pp(n, confidence, family),
        "method": ("exact (Clopper–Pearson) upper bound of the share of certification images the file gets wrong "
                   "and the trained model right; for files made by steps that train nothing, the trained model's "
                   "bound plus an exact bound of the share of unlabelled images whose prediction changed; "
                   f"Bonferroni over the {family} bound(s) of the run"),
    }
    if unlabelled:
        out["smallest_unlabelled_budget_pp"] = smallest_budget_pp(unlabelled, confidence, family)
    least = min(out["smallest_budget_pp"], out.get("smallest_unlabelled_budget_pp", 100.0))
    out["statement"] = (f"{n} labelled certification images" + (f" and {unlabelled} unlabelled" if unlabelled else "")
                        + f" can certify a budget of {least:.2f} pp or more at {confidence * 100:g} % "
                        f"({family} file bound(s) share the confidence)")
    if least > budget_pp + 1e-9:
        out["statement"] = nothing_certified(budget_pp, n, unlabelled, family, confidence)
    return out
