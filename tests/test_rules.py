"""The budget's rule (edgekit.rules): exact bounds, Bonferroni, certificates, split sizes and sentences. Pure numpy."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.data.datasets import held_out_sizes
from edgekit.rules import (
    certify,
    margin,
    paired_upper,
    per_bound_alpha,
    predicted_bound_pp,
    smallest_budget_pp,
    upper_rate,
    verdict,
    within_budget,
)


def test_upper_rate_is_clopper_pearson() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k, n, alpha in ((0, 100, 0.05), (1, 180, 0.05), (3, 144, 0.01), (39, 1000, 0.05), (12, 400, 0.5),
                        (250, 6000, 0.005)):
        assert upper_rate(k, n, alpha) == pytest.approx(float(stats.beta.ppf(1 - alpha, k + 1, n - k)), abs=1e-9)
    assert upper_rate(5, 5, 0.05) == 1.0 and upper_rate(0, 0, 0.05) == 1.0


def test_upper_rate_covers_at_the_stated_confidence_by_simulation() -> None:
    """Exact: over many binomial draws the bound is below the true rate at most alpha of the time."""
    rng = np.random.default_rng(0)
    for n, p in ((144, 0.004), (400, 0.01), (800, 0.03), (300, 0.0)):
        draws = rng.binomial(n, p, 4000)
        bounds = {int(k): upper_rate(int(k), n, 0.05) for k in np.unique(draws)}
        misses = np.mean([bounds[int(k)] < p for k in draws])
        assert misses <= 0.05 + 0.01, (n, p, misses)


def test_certified_drop_covers_the_true_drop_jointly_by_simulation() -> None:
    """Ten files certified on the same 500 images: all ten bounds hold together in ≥ 95 % of simulated splits
    (Bonferroni), while a bound at 95 % each would miss far more often."""
    rng = np.random.default_rng(1)
    n, files, p_lost, p_gained, runs = 500, 10, 0.008, 0.004, 400
    true_drop = (p_lost - p_gained) * 100
    joint_miss = single_miss = 0
    for _ in range(runs):
        ref = np.ones(n, bool)
        correct = {}
        for f in range(files):
            u = rng.random(n)
            ok = ref.copy()
            ok[u < p_lost] = False
            correct[str(f)] = ok
        certs = certify(ref, correct, list(correct))
        joint_miss += any(c.bound_pp < true_drop for c in certs.values())
        single = [paired_upper(int((~ok).sum()), 0, n, 0.025) * 100 for ok in correct.values()]
        single_miss += any(b < p_lost * 100 for b in single)
        assert all(c.family == files for c in certs.values())
    assert joint_miss / runs <= 0.05
    assert single_miss > joint_miss


def test_bonferroni_widens_the_bound_with_the_number_of_files() -> None:
    assert per_bound_alpha(0.95, 20) == pytest.approx(0.0025)
    assert smallest_budget_pp(800, 0.95, 1) < smallest_budget_pp(800, 0.95, 6) < smallest_budget_pp(800, 0.95, 40)
    assert smallest_budget_pp(800, 0.95, 1) == pytest.approx(100 * (1 - 0.025 ** (1 / 800)), abs=1e-3)
    with pytest.raises(ValueError):
        per_bound_alpha(1.0, 1)


def test_the_paired_bound_covers_the_drop_by_simulation_and_credits_gains() -> None:
    """Exact at 1 − 2·alpha: over simulated paired samples the bound is below the true drop rarely enough, and a
    file that gained 33 images and lost 1 (fine-tuning made it better) certifies below 0 while a loss-count bound
    would not."""
    rng = np.random.default_rng(3)
    for n, p_lost, p_gained in ((300, 0.01, 0.0), (500, 0.02, 0.01), (800, 0.005, 0.03), (200, 0.0, 0.0)):
        true = p_lost - p_gained
        u = rng.random((3000, n))
        lost, gained = (u < p_lost).sum(1), ((u >= p_lost) & (u < p_lost + p_gained)).sum(1)
        misses = np.mean([paired_upper(int(a), int(b), n, 0.025) < true - 1e-12 for a, b in zip(lost, gained)])
        assert misses <= 0.05 + 0.01, (n, p_lost, p_gained, misses)
    assert paired_upper(1, 33, 144, 0.025) < 0 < upper_rate(1, 144, 0.05) - 0.02


def test_the_bound_is_monotone_in_lost_and_gained() -> None:
    ref = np.ones(300, bool)
    ref[:20] = False  # the reference misses 20 images: a candidate can gain them
    bounds = []
    for lost in range(6):
        ok = ref.copy()
        ok[20:20 + lost] = False
        bounds.append(certify(ref, {"f": ok}, ["f"])["f"].bound_pp)
    assert all(b2 > b1 for b1, b2 in zip(bounds, bounds[1:]))
    better = ref.copy()
    better[:10] = True  # ten gained, nothing lost
    assert certify(ref, {"f": better}, ["f"])["f"].bound_pp <= bounds[0]


def test_a_train_nothing_file_of_the_reference_is_bounded_by_signed_disagreement() -> None:
    """An int8 file of the reference: the share of 5,000 unlabelled predictions it changed, signed by the lost and
    gained labelled images; a quantized pruned model and a plain file: their paired bound on the labelled images."""
    rng = np.random.default_rng(2)
    ref_ok = np.ones(400, bool)
    ref_ok[:30] = False
    int8_ok = ref_ok.copy()
    int8_ok[:8] = True  # gained 8
    int8_ok[40:43] = False  # lost 3
    pruned_ok = ref_ok.copy()
    pruned_ok[50:52] = False
    preds = {"ref": rng.integers(0, 10, 5000)}
    preds["int8"] = preds["ref"].copy()
    preds["int8"][:60] = (preds["int8"][:60] + 1) % 10  # 1.2 % of its predictions changed
    preds["pruned-int8"] = preds["ref"].copy()
    correct = {"ref": ref_ok, "int8": int8_ok, "pruned-int8": pruned_ok, "pruned-tflite": pruned_ok}
    certs = certify(ref_ok, correct, ["int8", "pruned-tflite", "pruned-int8"],
                    {"int8": "ref", "pruned-int8": "pruned"}, preds, "ref")
    assert {c.family for c in certs.values()} == {3} and sum(c.share for c in certs.values()) == pytest.approx(1)
    alpha = per_bound_alpha(0.95, 3)
    int8 = certs["int8"]
    assert int8.basis == "unlabelled" and int8.disagreed == 60 and int8.unlabelled == 5000
    signed = 100 * upper_rate(60, 5000, alpha / 2) * (2 * upper_rate(3, 11, alpha / 2) - 1)
    assert int8.bound_pp == pytest.approx(signed, abs=1e-3) and int8.bound_pp < 100 * upper_rate(60, 5000, alpha)
    assert int8.bound_pp < 1.0 < 100 * upper_rate(60, 5000, alpha / 2)  # changed 1.2 %, certified within 1 pp
    for name in ("pruned-int8", "pruned-tflite"):
        assert certs[name].basis == "labelled"
        assert certs[name].bound_pp == pytest.approx(100 * paired_upper(2, 0, 400, alpha / 2), abs=1e-3)


def test_the_reshuffle_bound_covers_the_drop_and_is_chosen_on_the_selection_images() -> None:
    """Exact: a file whose correctness changes on 5 % of images, losing 55 % of them (true drop 0.5 pp), is bounded
    below its true drop at most alpha of the time. It is tighter than the two rates bounded apart when a file loses
    about as often as it gains on many images, looser on few, equal when nothing is gained; :func:`reshuffles`
    picks it from the selection counts scaled to the certification split, and :func:`certify` uses it only for
    a file whose selection counts call for it."""
    from edgekit.rules import discordant_upper, reshuffles

    rng = np.random.default_rng(9)
    p_discordant, lost_share, alpha, n = 0.05, 0.55, 0.05, 2000
    true = p_discordant * (2 * lost_share - 1)
    discordant = rng.binomial(n, p_discordant, 3000)
    lost = rng.binomial(discordant, lost_share)
    misses = np.mean([discordant_upper(int(a), int(d - a), n, alpha) < true - 1e-12
                      for a, d in zip(lost, discordant)])
    assert misses <= alpha + 0.01
    assert discordant_upper(150, 150, 6000, 0.025) < paired_upper(150, 150, 6000, 0.0125) - 0.0015
    assert discordant_upper(2, 2, 800, 0.025) > paired_upper(2, 2, 800, 0.0125)
    assert discordant_upper(5, 0, 2000, 0.05) == pytest.approx(paired_upper(5, 0, 2000, 0.025))
    assert reshuffles(129, 162, 6000, 6000) and not reshuffles(1, 1, 400, 800) and not reshuffles(5, 0, 2000, 2000)

    ref_ok = np.ones(6000, bool)
    ok = ref_ok.copy()
    ok[:150] = False
    ref_ok[150:300] = False  # 150 lost, 150 gained
    plain = certify(ref_ok, {"f": ok, "g": ref_ok}, ["f", "g"], order=["f"])["f"]  # f: half the error
    shuffled = certify(ref_ok, {"f": ok, "g": ref_ok}, ["f", "g"], order=["f"],
                       selection={"f": (150, 150)}, n_selection=6000)["f"]
    assert plain.basis == "labelled" and plain.bound_pp > 0.9 and plain.to_dict()["basis"] == "labelled"
    assert shuffled.basis == "reshuffle" and shuffled.bound_pp == pytest.approx(
        100 * discordant_upper(150, 150, 6000, 0.025), abs=1e-3) and shuffled.bound_pp < 0.8
    assert predicted_bound_pp(150, 150, 300, 6000, 6000) == pytest.approx(shuffled.bound_pp, abs=1e-3)
    assert "within the 1 pp budget (6000 images)" in shuffled.verdict(1.0)


def test_the_signed_disagreement_bound_covers_the_drop_by_simulation() -> None:
    """Exact: a file that changes 1.5 % of predictions, losing 60 % of the changed images whose correctness
    changed, is bounded below its true drop at most alpha of the time (unlabelled and labelled images drawn
    afresh each time)."""
    rng = np.random.default_rng(5)
    p_changed, p_discordant, lost_share, alpha = 0.015, 0.012, 0.6, 0.05
    true = p_discordant * (2 * lost_share - 1)
    misses = 0
    for _ in range(3000):
        disagreed = int(rng.binomial(3000, p_changed))
        discordant = int(rng.binomial(600, p_discordant))
        lost = int(rng.binomial(discordant, lost_share))
        from edgekit.rules import signed_disagreement_upper

        misses += signed_disagreement_upper(disagreed, 3000, lost, discordant - lost, alpha) < true - 1e-12
    assert misses / 3000 <= alpha + 0.01


def test_preferred_files_get_the_larger_shares_of_the_error() -> None:
    from edgekit.rules import preference_shares

    shares = preference_shares(["b", "a"], ["a", "b", "c", "d"])
    assert shares == {"b": 0.5, "a": 0.25, "c": 0.125, "d": 0.125}
    assert preference_shares(["a", "b"], ["a", "b"]) == {"a": 0.5, "b": 0.5}
    assert preference_shares([], ["a", "b", "c", "d"]) == {f: 0.25 for f in "abcd"}
    assert preference_shares(["x"], ["a"]) == {"a": 1.0}  # a preference for no file of the run is ignored
    ref = np.ones(800, bool)
    one_lost = ref.copy()
    one_lost[0] = False
    files = {f: one_lost for f in "abcdefghi"}
    plain = certify(ref, files, list(files))
    weighted = certify(ref, files, list(files), order=["e"])
    assert weighted["e"].share == 0.5 and weighted["e"].bound_pp < 1.0 < plain["e"].bound_pp
    assert weighted["a"].bound_pp > plain["a"].bound_pp


def test_the_shares_of_certified_files_pass_to_the_files_still_open() -> None:
    """Weighted Holm: files that certify easily (an export that changed nothing) hand their shares on, so a file
    just outside the budget at its weighted-Bonferroni share is certified at the recycled one; no file's share is
    ever below its first one, and a file that certifies keeps the share it was certified at."""
    ref = np.ones(1500, bool)
    ref[:100] = False
    lossy = ref.copy()
    lossy[100:106] = False  # lost 6 of 1,500: 0.4 pp
    files = {"export": ref, "float16": ref, "pruned": lossy, "other": lossy}
    order = ["float16", "pruned", "other"]  # pruned: a quarter of the error at first
    first = certify(ref, files, list(files), order=order)
    recycled = certify(ref, files, list(files), order=order, budget_pp=1.0)
    assert not within_budget(first["pruned"].bound_pp, 1.0) and within_budget(recycled["pruned"].bound_pp, 1.0)
    assert recycled["pruned"].share > first["pruned"].share
    assert all(recycled[f].share >= first[f].share for f in files)
    assert recycled["export"].share == first["export"].share and recycled["float16"].share == first["float16"].share
    assert recycled["pruned"].bound_pp == pytest.approx(100 * paired_upper(6, 0, 1500, 0.05 * recycled[
        "pruned"].share / 2), abs=1e-3)


def test_recycled_shares_keep_the_family_error_by_simulation() -> None:
    """Three files whose true drop is exactly the budget (1 pp) beside two that changed nothing: with the shares
    recycled, some lossy file is certified within the budget in at most alpha of the runs."""
    rng = np.random.default_rng(11)
    n, runs, wrong = 1000, 1500, 0
    for _ in range(runs):
        ref = rng.random(n) < 0.85
        files = {"a": ref, "b": ref}
        for f in ("c", "d", "e"):
            u = rng.random(n)
            ok = ref.copy()
            ok[ref & (u < 0.01 / 0.85)] = False  # lose 1 %, gain nothing: drop 1 pp
            files[f] = ok
        certs = certify(ref, files, list(files), order=["c", "a", "d", "b", "e"], budget_pp=1.0)
        wrong += any(within_budget(certs[f].bound_pp, 1.0) for f in "cde")
    assert wrong / runs <= 0.05 + 0.012


def test_sentences_never_say_a_zero_drop_breaks_the_budget() -> None:
    text = verdict(0.0, 1.93, 1.0, 144)
    assert text == "drop 0.00 pp, but its 95 % upper bound 1.93 pp exceeds the 1 pp budget on 144 images"
    assert verdict(1.5, 2.4, 1.0, 800) == "drop 1.50 pp, and its 95 % upper bound 2.40 pp exceeds the 1 pp budget " \
                                          "on 800 images"
    assert verdict(0.1, 0.62, 1.0, 800) == "drop 0.10 pp, 95 % upper bound 0.62 pp: within the 1 pp budget (800 images)"


def test_margin_states_the_smallest_certifiable_budget_and_what_would_help() -> None:
    ref = np.ones(287, bool)
    certs = certify(ref, {"a": ref, "b": ref, "c": ref}, ["a", "b", "c"])
    m = margin({k: c.to_dict() for k, c in certs.items()}, 1.0)
    assert m["certification_size"] == 287 and m["family"] == 3
    assert m["smallest_budget_pp"] == pytest.approx(smallest_budget_pp(287, 0.95, 3)) and m["smallest_budget_pp"] > 1
    preferred = certify(ref, {"a": ref, "b": ref, "c": ref}, ["a", "b", "c"], order=["a"])
    assert margin({k: c.to_dict() for k, c in preferred.items()}, 1.0)["smallest_budget_pp"] == pytest.approx(
        smallest_budget_pp(287, 0.95, share=0.5))
    assert "more labelled images" in m["statement"] and "--unlabeled-dir" in m["statement"]
    assert "--confidence" in m["statement"] and f"{m['smallest_budget_pp']:.2f} pp" in m["statement"]
    big = certify(np.ones(2000, bool), {"a": np.ones(2000, bool)}, ["a"])
    assert "would help" not in margin({"a": big["a"].to_dict()}, 1.0)["statement"]


@pytest.mark.parametrize("n", [20, 100, 1437, 4000, 60000])
def test_split_sizes_adapt_to_small_data(n: int) -> None:
    select, cert = held_out_sizes(n)
    assert select == round(n * 0.1) and cert >= select
    assert n - select - cert >= 0.6 * n  # training keeps at least 60 %
    assert cert == max(min(round(n * 0.2), 2000), select)  # plentiful data: as many as selection
    assert held_out_sizes(12) == (1, 0)  # too small to certify anything


def test_fit_names_ram_or_flash_and_leaves_the_unknown_undecided() -> None:
    from edgekit.rules.fit import KIB, Budgets, Fit

    b = Budgets(ram_kb=64, flash_kb=256, runtime_ram_kb=8, runtime_flash_kb=64)
    ok = Fit(40 * KIB, 100 * KIB, b)
    assert ok.fits and ok.reason == "" and ok.ram_needed == 48 * KIB and ok.flash_needed == 164 * KIB
    ram = Fit(60 * KIB, 100 * KIB, b)
    assert ram.fits is False and ram.fits_flash and ram.reason == "RAM: arena 60.0 KB + runtime 8 KB > 64 KB"
    flash = Fit(None, 200 * KIB, b)
    assert flash.fits is False and flash.fits_ram is None and flash.reason.startswith("flash: model 200.0 KB")
    assert Fit(None, 100 * KIB, b).fits is None


def test_the_selection_images_predict_which_files_will_certify() -> None:
    """A file that churns (10 lost and 10 gained of 400 selection images) is predicted to fail a 1 pp budget on
    800 certification images although its selection drop is 0; one that changed 4 of 400 predictions, bounded on
    10,800 unlabelled images, is predicted to pass; one that changed nothing predicts the smallest budget."""
    from edgekit.rules import predicted_bound_pp

    assert predicted_bound_pp(10, 10, 20, 400, 800) > 1.0
    assert predicted_bound_pp(2, 2, 4, 400, 800, 10800) < 1.0 < predicted_bound_pp(2, 2, 4, 400, 800)
    assert predicted_bound_pp(0, 0, 0, 400, 800) == pytest.approx(smallest_budget_pp(800, 0.95, share=0.5))
