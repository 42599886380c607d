"""Exact bounds of a file's drop against the reference, and the certificates built on them (:mod:`edgekit.rules`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
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

Basis = Literal["labelled", "reshuffle", "unlabelled"]
"""Which bound certified a file: :func:`paired_upper` or :func:`discordant_upper` on the labelled images, or
:func:`signed_disagreement_upper` on the unlabelled ones."""


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


def smallest_budget_pp(n: int, confidence: float = CONFIDENCE, family: int = 1, *, share: float | None = None) -> float:
    """The smallest budget (pp) ``n`` images can certify for a file whose bound gets ``share`` of the error (by
    default 1/``family``): the bound of a file that changed nothing, :func:`paired_upper` on ``n`` labelled
    images or the disagreement bound on ``n`` unlabelled ones (both at half the file's error)."""
    if n <= 0:
        return 100.0
    alpha = per_bound_alpha(confidence, family) if share is None else (1.0 - confidence) * share
    return round(upper_rate(0, n, alpha / 2) * 100.0, 3)


def preference_shares(order: Sequence[str], files: Iterable[str]) -> dict[str, float]:
    """Each file's share of the run's error (weighted Bonferroni; the shares sum to 1): the files the chooser
    prefers, ``order`` (decided without the certification images), get 1/2, 1/4, 1/8, … in that order; the other
    files share what is left equally (the last preferred file takes it when there are none). With no preference
    every file gets the same share (plain Bonferroni). Any shares fixed before the certification images are looked
    at keep all bounds valid together; these spend the error where a file is likely to be handed out."""
    files = list(dict.fromkeys(files))
    preferred = [f for f in dict.fromkeys(order) if f in files]
    rest = [f for f in files if f not in preferred]
    if not preferred:
        return {f: 1.0 / len(files) for f in files} if files else {}
    shares = {f: 0.5 ** (i + 1) for i, f in enumerate(preferred)}
    left = 0.5 ** len(preferred)
    if rest:
        shares.update({f: left / len(rest) for f in rest})
    else:
        shares[preferred[-1]] += left
    return shares


def within_budget(drop_pp: float, budget_pp: float) -> bool:
    """A drop (pp against the reference; for choosing, its upper confidence bound) within the budget."""
    return drop_pp <= budget_pp + 1e-9


# --------------------------------------------------------------------------- certificates

@dataclass(frozen=True)
class Certificate:
    """One file's certified drop against the reference, in pp.

    ``drop_pp``: the point drop on the labelled certification images; ``bound_pp``: its exact upper bound, valid
    jointly with the run's other bounds at ``confidence``; this bound spends ``share`` of the run's error (``family``
    files share it, :func:`preference_shares`). ``basis`` says which bound it is: ``labelled`` (``lost`` and
    ``gained`` of ``n`` images, :func:`paired_upper`), ``reshuffle`` (the same images, :func:`discordant_upper`) or
    ``unlabelled`` (``disagreed`` of ``unlabelled`` predictions changed against the reference, signed by the lost
    and gained images among the labelled ones)."""

    n: int
    lost: int
    gained: int
    drop_pp: float
    bound_pp: float
    basis: Basis
    confidence: float
    family: int
    share: float = 1.0
    unlabelled: int = 0
    disagreed: int = 0

    def verdict(self, budget_pp: float) -> str:
        """The plain sentence (:func:`verdict`)."""
        images = self.unlabelled if self.basis == "unlabelled" else self.n
        return verdict(self.drop_pp, self.bound_pp, budget_pp, images, self.confidence, self.basis)

    def to_dict(self) -> dict[str, Any]:
        out = {"validation_size": self.n, "certification_size": self.n, "drop_pp": self.drop_pp,
               "bound_pp": self.bound_pp, "lost": self.lost, "gained": self.gained, "basis": self.basis,
               "confidence": self.confidence, "family": self.family, "share": round(self.share, 6)}
        if self.unlabelled:
            out.update(unlabelled=self.unlabelled, disagreed=self.disagreed)
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


def signed_disagreement_upper(disagreed: int, unlabelled: int, lost: int, gained: int, alpha: float) -> float:
    """An exact ``1 − alpha`` upper bound of the drop of a file that changed ``disagreed`` of ``unlabelled``
    predictions, when ``lost`` and ``gained`` of the labelled images changed from right to wrong and back.

    A lost or gained image is one whose prediction changed, so drop = p_changed-and-discordant · (2·s − 1) with
    s the share of lost among the discordant images, and p_changed-and-discordant ≤ p_changed. The Clopper–Pearson
    upper bounds of p_changed (on the unlabelled images) and of s (on the discordant labelled ones, given their
    number), each at ``alpha / 2``, bound it: U_changed · max(0, 2·U_s − 1). A file that changes 1 % of predictions
    but gains as often as it loses is bounded well below 1 %."""
    changed = upper_rate(disagreed, unlabelled, alpha / 2)
    lost_share = upper_rate(lost, lost + gained, alpha / 2)  # 1.0 when nothing discordant was seen
    return changed * max(0.0, 2.0 * lost_share - 1.0)


def discordant_upper(lost: int, gained: int, n: int, alpha: float) -> float:
    """An exact ``1 − alpha`` upper bound of the drop p_lost − p_gained after ``lost`` and ``gained`` of ``n``
    labelled images: :func:`signed_disagreement_upper` with the labelled images as their own count of changes.

    drop = p_discordant · (2·s − 1), s the share of lost among the images whose correctness changed. Where a file
    loses about as often as it gains (a fine-tuned model reshuffles which images it gets right) it is far tighter
    than :func:`paired_upper`, which bounds the two rates apart: 150 lost and 150 gained of 6,000 images bound
    0.76 pp here against 0.94 pp there (95 %, half the error). With few discordant images the share s is barely
    bounded and :func:`paired_upper` is the tighter (2 lost and 2 gained of 800: 1.27 against 0.99 pp)."""
    return signed_disagreement_upper(lost + gained, n, lost, gained, alpha) if n > 0 else 1.0


def reshuffles(lost: int, gained: int, n_selection: int, n_certification: int, confidence: float = CONFIDENCE,
               share: float = 0.5) -> bool:
    """Whether a file's labelled certificate is :func:`discordant_upper` rather than :func:`paired_upper`: the one
    that bounds its ``lost`` and ``gained`` selection images, scaled to the certification split, the tighter.
    Decided on the selection images, before the certification images are looked at, so each file still spends
    its error once."""
    if n_selection <= 0 or n_certification <= 0:
        return False
    scale = n_certification / n_selection
    lost_c, gained_c, alpha = round(lost * scale), round(gained * scale), (1.0 - confidence) * share
    return discordant_upper(lost_c, gained_c, n_certification, alpha) < paired_upper(lost_c, gained_c,
                                                                                       n_certification, alpha / 2)


def certify(reference_ok: np.ndarray, correct: Mapping[str, np.ndarray], files: Iterable[str],
            anchors: Mapping[str, str] | None = None, predictions: Mapping[str, np.ndarray] | None = None,
            reference_id: str = "", confidence: float = CONFIDENCE,
            order: Sequence[str] = (), selection: Mapping[str, tuple[int, int]] | None = None,
            n_selection: int = 0, budget_pp: float | None = None) -> dict[str, Certificate]:
    """Certify each of ``files`` (ids) against the reference (module doc), all bounds jointly at ``confidence``,
    each spending its :func:`preference_shares` of the error (``order``: the chooser's preferred files, decided
    without these images). With ``budget_pp`` the shares are recycled (weighted Holm): once some files are
    certified within the budget, the error is split again over the files still open, in proportion to their
    shares, and those are bounded again, until no more file is certified. A file certified early keeps the share
    it was certified at; the files it leaves behind get more. The family's error is still ``1 − confidence``
    (Holm's closed-testing argument), and no file gets less than its weighted-Bonferroni share.

    ``reference_ok`` / ``correct[id]``: per labelled certification image, whether the reference / a model is right.
    ``anchors``: for a file made from a trained model by steps that train nothing, that model's id. A file made so
    from the reference, with ``predictions`` (id → top-1 class per unlabelled image, the reference's included) on
    more images than the labelled ones, is certified by :func:`signed_disagreement_upper`; every other file by
    :func:`paired_upper` on the labelled images, or by :func:`discordant_upper` where :func:`reshuffles` says so
    from its ``selection`` counts (id → lost, gained of ``n_selection`` selection images). Which bound a file gets
    depends only on how it was made, on the numbers of images and on the selection images, never on its
    certification results, so the error is spent once per file.
    """
    ref_ok = np.asarray(reference_ok, dtype=bool)
    anchors, predictions = dict(anchors or {}), dict(predictions or {})
    files = list(dict.fromkeys(files))
    shares = preference_shares(order, files)
    selection = dict(selection or {})
    n = len(ref_ok)

    def counted(f: str) -> tuple[int, int, float, int, int, bool]:
        lost, gained, drop = _labelled(ref_ok, np.asarray(correct[f], dtype=bool)) if n else (0, 0, 0.0)
        seen = predictions.get(f)
        chained = anchors.get(f) == reference_id and reference_id in predictions and seen is not None
        unlabelled = len(seen) if chained and seen is not None else 0
        disagreed = int((np.asarray(seen) != np.asarray(predictions[reference_id])).sum()) if unlabelled > n else 0
        # which bound: decided on the selection images at the file's first share, never on these images
        shuffled = f in selection and reshuffles(*selection[f], n_selection, n, confidence, shares[f])
        return lost, gained, drop, unlabelled, disagreed, shuffled

    counts = {f: counted(f) for f in files}

    def bounded(f: str, share: float) -> Certificate:
        lost, gained, drop, unlabelled, disagreed, shuffled = counts[f]
        rate, basis = _file_bound(lost, gained, n, disagreed, unlabelled, (1.0 - confidence) * share, shuffled)
        if basis == "unlabelled":
            return Certificate(n, lost, gained, drop, round(max(rate * 100.0, drop), 3), basis, confidence,
                               len(files), share, unlabelled, disagreed)
        return Certificate(n, lost, gained, drop, round(rate * 100.0, 3), basis, confidence, len(files), share)

    out = {f: bounded(f, shares[f]) for f in files}
    open_files = list(files)
    while budget_pp is not None:
        passed = {f for f in open_files if within_budget(out[f].bound_pp, budget_pp)}
        open_files = [f for f in open_files if f not in passed]
        left = sum(shares[f] for f in open_files)
        if not passed or left <= 0.0:
            break
        out.update({f: bounded(f, shares[f] / left) for f in open_files})
    return out


def predicted_bound_pp(lost: int, gained: int, changed: int, n_selection: int, n_certification: int,
                       n_unlabelled: int = 0, confidence: float = CONFIDENCE, share: float = 0.5) -> float:
    """What :func:`certify` would bound a file at (pp) if the certification images behaved like the selection
    images: its ``lost``, ``gained`` and ``changed`` (prediction differs from the reference's) selection images
    scaled to the certification split, bounded as :func:`certify` will bound it at ``share`` of the error
    (``n_unlabelled``: the unlabelled images a file made from the reference by steps that train nothing is bounded
    on; 0 for any other file; the labelled bound :func:`reshuffles` picks). A prediction for ranking files before
    certification, not a certificate."""
    if n_selection <= 0 or n_certification <= 0:
        return 100.0
    scale = n_certification / n_selection
    changed_u = round(changed * n_unlabelled / n_selection)
    bound, _ = _file_bound(round(lost * scale), round(gained * scale), n_certification, changed_u, n_unlabelled,
                           (1.0 - confidence) * share,
                           reshuffles(lost, gained, n_selection, n_certification, confidence, share))
    return round(bound * 100.0, 3)


def _file_bound(lost: int, gained: int, n: int, disagreed: int, unlabelled: int, alpha: float,
                reshuffled: bool = False) -> tuple[float, Basis]:
    """One file's ``1 − alpha`` upper bound of its drop (a rate) and which bound it is: the signed disagreement
    bound when it is bounded on more unlabelled images than labelled ones, else :func:`discordant_upper` for a
    file that ``reshuffled`` and :func:`paired_upper` for the others (:func:`certify`)."""
    if unlabelled > n:
        return signed_disagreement_upper(disagreed, unlabelled, lost, gained, alpha), "unlabelled"
    if reshuffled:
        return discordant_upper(lost, gained, n, alpha), "reshuffle"
    return (paired_upper(lost, gained, n, alpha / 2) if n else 1.0), "labelled"


def nothing_certified(budget_pp: float, n_labelled: int, n_unlabelled: int, family: int,
                      confidence: float = CONFIDENCE, share: float | None = None) -> str:
    """One line: why no compressed file could be certified, and what would help."""
    least = min(smallest_budget_pp(n_labelled, confidence, family, share=share),
                smallest_budget_pp(n_unlabelled, confidence, family, share=share))
    return (f"no compressed file could be certified within the {budget_pp:g} pp budget at {confidence * 100:g} % "
            f"on {n_labelled} labelled and {n_unlabelled} unlabelled certification images ({family} bounds); "
            f"even a file that changed nothing certifies only {least:.2f} pp here: more labelled images, "
            f"--unlabeled-dir, a budget of at least {least:.2f} pp or a lower --confidence would help")


def margin(checks: Mapping[str, Mapping[str, Any]], budget_pp: float, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The report's statement of what this data can certify, from the files' certificates (``to_dict`` forms):
    how many images, how many bounds share the confidence, and the smallest budget a file could be certified at
    (the file given the largest share of the error)."""
    certs = list(checks.values())
    n = max((int(c.get("certification_size", c.get("validation_size", 0)) or 0) for c in certs), default=0)
    unlabelled = max((int(c.get("unlabelled", 0) or 0) for c in certs), default=0)
    family = max((int(c.get("family", 1) or 1) for c in certs), default=1)
    share = max((float(c.get("share", 1.0 / family) or 1.0 / family) for c in certs), default=1.0)
    out: dict[str, Any] = {
        "confidence": confidence, "validation_size": n, "certification_size": n, "unlabelled_size": unlabelled,
        "family": family, "largest_share": round(share, 6),
        "smallest_budget_pp": smallest_budget_pp(n, confidence, share=share),
        "method": ("exact (Clopper–Pearson) bounds: of the share of certification images the file gets wrong and "
                   "the trained model right, less the share the other way round (or, for a file the selection images "
                   "show reshuffling which images it gets right, of the share whose correctness changed, signed by "
                   "the lost and gained among them); for files made from the trained "
                   "model by steps that train nothing, of the share of unlabelled images whose prediction changed, "
                   "signed by the lost and gained labelled images; weighted Holm over the "
                   f"{family} file(s) of the run, the files the chooser prefers getting the larger shares, the "
                   "shares of certified files passing to the others"),
    }
    if unlabelled:
        out["smallest_unlabelled_budget_pp"] = smallest_budget_pp(unlabelled, confidence, share=share)
    least = min(out["smallest_budget_pp"], out.get("smallest_unlabelled_budget_pp", 100.0))
    out["statement"] = (f"{n} labelled certification images" + (f" and {unlabelled} unlabelled" if unlabelled else "")
                        + f" can certify a budget of {least:.2f} pp or more at {confidence * 100:g} % "
                        f"({family} file bound(s) share the confidence)")
    if least > budget_pp + 1e-9:
        out["statement"] = nothing_certified(budget_pp, n, unlabelled, family, confidence, share)
    return out
