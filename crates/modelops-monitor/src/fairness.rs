//! Group fairness of a binary classifier over one protected attribute, with
//! fairlearn 0.15's definitions (checked against fairlearn by
//! `tests/python/test_evaluate_reference.py`):
//!
//! * selection rate of a group = share of its rows predicted positive;
//! * demographic parity difference = max − min of the selection rates over
//!   groups, ratio = min / max;
//! * equal opportunity difference / ratio = the same over true positive rates;
//! * equalized odds difference = the larger of the TPR and FPR differences,
//!   ratio = the smaller of the TPR and FPR ratios (`agg="worst_case"`);
//! * a group with no actual positives has TPR 0 and one with no actual
//!   negatives FPR 0 (sklearn's confusion matrix, which fairlearn uses);
//!   a ratio whose maximum is 0 is 0/0 and is reported as not defined
//!   (`null` in JSON), as fairlearn answers NaN.
//!
//! The four-fifths flag marks the attribute when the demographic parity ratio
//! is below 0.8 (the US EEOC screening heuristic for adverse impact in
//! employment selection). It is a weak test: fairlearn's own user guide calls
//! applying it outside that setting "an indefensible example of epistemic
//! trespassing". Treat it as a prompt to look at the groups, not a verdict.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::performance::Confusion;

/// The default four-fifths threshold.
pub const FOUR_FIFTHS: f64 = 0.8;

/// More groups than this and per-group rates stop meaning anything (an id
/// column given as the protected attribute, say).
pub const MAX_GROUPS: usize = 1000;

/// Groups smaller than this get a warning: their rates are unstable.
pub const SMALL_GROUP: u64 = 30;

/// Rates of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStats {
    pub group: String,
    pub count: u64,
    /// Share of all rows that fall into this group.
    pub share: f64,
    pub actual_positives: u64,
    pub predicted_positives: u64,
    pub selection_rate: f64,
    pub accuracy: f64,
    pub true_positive_rate: f64,
    pub false_positive_rate: f64,
    /// Selection rate over the highest group's selection rate (the adverse
    /// impact ratio); `None` when no group is ever selected.
    pub impact_ratio: Option<f64>,
    pub confusion: Confusion,
}

/// The four-fifths (80 %) screening heuristic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FourFifths {
    pub threshold: f64,
    /// The demographic parity ratio it is applied to.
    pub ratio: Option<f64>,
    /// True when `ratio < threshold`.
    pub flagged: bool,
    /// Groups whose impact ratio is below the threshold.
    pub groups_below: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FairnessReport {
    /// The protected attribute (column name).
    pub attribute: String,
    pub pos_label: String,
    pub rows: u64,
    /// Sorted by group name.
    pub groups: Vec<GroupStats>,
    pub demographic_parity_difference: Option<f64>,
    pub demographic_parity_ratio: Option<f64>,
    pub equalized_odds_difference: Option<f64>,
    pub equalized_odds_ratio: Option<f64>,
    pub equal_opportunity_difference: Option<f64>,
    pub equal_opportunity_ratio: Option<f64>,
    pub four_fifths: FourFifths,
    /// Things a reader should know before trusting the figures.
    pub warnings: Vec<String>,
}

/// Max − min over groups (pandas skips nothing here: rates are never NaN).
fn difference(values: &[f64]) -> Option<f64> {
    let max = values.iter().copied().reduce(f64::max)?;
    let min = values.iter().copied().reduce(f64::min)?;
    Some(max - min)
}

/// Min / max over groups; `NaN` when the maximum is 0, like fairlearn.
fn ratio(values: &[f64]) -> f64 {
    let max = values.iter().copied().reduce(f64::max).unwrap_or(f64::NAN);
    let min = values.iter().copied().reduce(f64::min).unwrap_or(f64::NAN);
    min / max
}

fn defined(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// Assess `y_pred` against `y_true` (both already reduced to "is the positive
/// label") across the groups of `attribute`.
pub fn assess(
    attribute: &str,
    pos_label: &str,
    y_true: &[bool],
    y_pred: &[bool],
    groups: &[String],
    threshold: f64,
) -> Result<FairnessReport> {
    if y_true.len() != y_pred.len() || y_true.len() != groups.len() {
        return Err(Error::InvalidInput(format!(
            "target, prediction and protected attribute lengths differ (`{}`, `{}`, `{}`)",
            y_true.len(),
            y_pred.len(),
            groups.len()
        )));
    }
    if y_true.is_empty() {
        return Err(Error::InvalidInput("no rows to assess fairness on".to_owned()));
    }
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(Error::InvalidInput(format!("four-fifths threshold `{threshold}` must be in (0, 1]")));
    }
    let mut by_group: BTreeMap<&str, Confusion> = BTreeMap::new();
    for ((&t, &p), g) in y_true.iter().zip(y_pred).zip(groups) {
        let c = by_group.entry(g.as_str()).or_default();
        match (t, p) {
            (true, true) => c.tp += 1,
            (false, true) => c.fp += 1,
            (false, false) => c.tn += 1,
            (true, false) => c.fn_ += 1,
        }
        if by_group.len() > MAX_GROUPS {
            return Err(Error::column(
                attribute,
                format!("has more than {MAX_GROUPS} distinct values; fairness needs a protected attribute with few groups"),
            ));
        }
    }
    let rows = y_true.len() as u64;
    let sr: Vec<f64> = by_group.values().map(Confusion::selection_rate).collect();
    let tpr: Vec<f64> = by_group.values().map(Confusion::recall).collect();
    let fpr: Vec<f64> = by_group.values().map(Confusion::false_positive_rate).collect();
    let max_sr = sr.iter().copied().fold(0.0, f64::max);

    let mut warnings = Vec::new();
    let groups: Vec<GroupStats> = by_group
        .iter()
        .map(|(&g, c)| {
            let count = c.total();
            if count < SMALL_GROUP {
                warnings.push(format!("group `{g}` has only {count} rows; its rates are unstable"));
            }
            if c.tp + c.fn_ == 0 {
                warnings.push(format!("group `{g}` has no actual positives; its true positive rate is taken as 0"));
            }
            if c.fp + c.tn == 0 {
                warnings.push(format!("group `{g}` has no actual negatives; its false positive rate is taken as 0"));
            }
            let impact_ratio = (max_sr > 0.0).then(|| c.selection_rate() / max_sr);
            GroupStats {
                group: g.to_owned(),
                count,
                share: count as f64 / rows as f64,
                actual_positives: c.tp + c.fn_,
                predicted_positives: c.tp + c.fp,
                selection_rate: c.selection_rate(),
                accuracy: c.accuracy(),
                true_positive_rate: c.recall(),
                false_positive_rate: c.false_positive_rate(),
                impact_ratio,
                confusion: *c,
            }
        })
        .collect();
    if groups.len() == 1 {
        warnings.push(format!("the protected attribute has one group (`{}`); there is nothing to compare", groups[0].group));
    }

    let (tpr_diff, fpr_diff) = (difference(&tpr), difference(&fpr));
    let (tpr_ratio, fpr_ratio) = (ratio(&tpr), ratio(&fpr));
    // fairlearn aggregates with Python's built-in max/min over [tpr, fpr]:
    // the second replaces the first only if strictly larger/smaller, so a NaN
    // TPR ratio stays NaN while a NaN FPR ratio is skipped.
    let eo_diff = match (tpr_diff, fpr_diff) {
        (Some(t), Some(f)) => Some(if f > t { f } else { t }),
        _ => None,
    };
    let eo_ratio = if fpr_ratio < tpr_ratio { fpr_ratio } else { tpr_ratio };
    let dp_ratio = defined(ratio(&sr));
    let groups_below = groups
        .iter()
        .filter(|g| g.impact_ratio.is_some_and(|r| r < threshold))
        .map(|g| g.group.clone())
        .collect();

    Ok(FairnessReport {
        attribute: attribute.to_owned(),
        pos_label: pos_label.to_owned(),
        rows,
        demographic_parity_difference: difference(&sr),
        demographic_parity_ratio: dp_ratio,
        equalized_odds_difference: eo_diff,
        equalized_odds_ratio: defined(eo_ratio),
        equal_opportunity_difference: tpr_diff,
        equal_opportunity_ratio: defined(tpr_ratio),
        four_fifths: FourFifths {
            threshold,
            ratio: dp_ratio,
            flagged: dp_ratio.is_some_and(|r| r < threshold),
            groups_below,
        },
        groups,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.unwrap_or(f64::NAN);
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    /// fairlearn's user-guide example (reference doc §2.2): 18 rows, groups a/b/c.
    fn user_guide() -> (Vec<bool>, Vec<bool>, Vec<String>) {
        let y_true = [0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0];
        let y_pred = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1];
        let groups = "aaaaaaabbbbbbccccc".chars().map(String::from).collect();
        (y_true.iter().map(|&v| v == 1).collect(), y_pred.iter().map(|&v| v == 1).collect(), groups)
    }

    #[test]
    fn matches_fairlearn_user_guide_example() {
        let (t, p, g) = user_guide();
        let r = assess("group", "1", &t, &p, &g, FOUR_FIFTHS).unwrap();
        let sr: Vec<f64> = r.groups.iter().map(|g| g.selection_rate).collect();
        assert_eq!(r.groups.len(), 3);
        assert!(sr.iter().all(|v| v.is_finite()));
        // Recomputed by hand from the rows above.
        let tpr: Vec<f64> = r.groups.iter().map(|g| g.true_positive_rate).collect();
        let fpr: Vec<f64> = r.groups.iter().map(|g| g.false_positive_rate).collect();
        let spread = |v: &[f64]| v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min);
        close(r.demographic_parity_difference, spread(&sr));
        close(r.equal_opportunity_difference, spread(&tpr));
        close(r.equalized_odds_difference, spread(&tpr).max(spread(&fpr)));
    }

    #[test]
    fn worked_example() {
        // a: t=[0,0,1,1] p=[1,0,1,0]; b: t=[0,0] p=[0,1]
        // fairlearn: EO diff 0.5, EO ratio 0.0, EOpp diff 0.5, EOpp ratio 0.0
        let t = [false, false, true, true, false, false];
        let p = [true, false, true, false, false, true];
        let g: Vec<String> = ["a", "a", "a", "a", "b", "b"].iter().map(|s| s.to_string()).collect();
        let r = assess("g", "1", &t, &p, &g, FOUR_FIFTHS).unwrap();
        close(r.equalized_odds_difference, 0.5);
        close(r.equalized_odds_ratio, 0.0);
        close(r.equal_opportunity_difference, 0.5);
        close(r.equal_opportunity_ratio, 0.0);
        close(r.demographic_parity_difference, 0.0);
        close(r.demographic_parity_ratio, 1.0);
        assert!(!r.four_fifths.flagged);
        assert!(r.warnings.iter().any(|w| w.contains("group `b` has no actual positives")));
    }

    #[test]
    fn nobody_selected_gives_undefined_ratios_not_a_panic() {
        let t = [true, false, true, false];
        let p = [false; 4];
        let g: Vec<String> = ["x", "x", "y", "y"].iter().map(|s| s.to_string()).collect();
        let r = assess("g", "1", &t, &p, &g, FOUR_FIFTHS).unwrap();
        assert_eq!(r.demographic_parity_ratio, None);
        assert_eq!(r.demographic_parity_difference, Some(0.0));
        assert_eq!(r.equalized_odds_ratio, None);
        assert!(!r.four_fifths.flagged);
        assert!(r.groups.iter().all(|g| g.impact_ratio.is_none()));
    }

    #[test]
    fn four_fifths_flags_the_low_group() {
        // x selects 1/2, y selects 1/4 → ratio 0.5
        let t = [true; 6];
        let p = [true, false, true, false, false, false];
        let g: Vec<String> = ["x", "x", "y", "y", "y", "y"].iter().map(|s| s.to_string()).collect();
        let r = assess("g", "1", &t, &p, &g, FOUR_FIFTHS).unwrap();
        close(r.demographic_parity_ratio, 0.5);
        assert!(r.four_fifths.flagged);
        assert_eq!(r.four_fifths.groups_below, vec!["y".to_owned()]);
        // FPR is 0/0 → 0 in both groups, so its ratio is NaN; fairlearn's min
        // keeps the TPR ratio.
        close(r.equalized_odds_ratio, 0.5);
    }

    proptest::proptest! {
        /// Differences lie in [0, 1], ratios in [0, 1] when defined, and the
        /// four-fifths flag agrees with the demographic parity ratio.
        #[test]
        fn parity_metrics_stay_in_range(rows in proptest::collection::vec((proptest::bool::ANY, proptest::bool::ANY, 0u8..4), 1..80)) {
            let t: Vec<bool> = rows.iter().map(|r| r.0).collect();
            let p: Vec<bool> = rows.iter().map(|r| r.1).collect();
            let g: Vec<String> = rows.iter().map(|r| r.2.to_string()).collect();
            let r = assess("g", "1", &t, &p, &g, FOUR_FIFTHS).unwrap();
            for d in [r.demographic_parity_difference, r.equalized_odds_difference, r.equal_opportunity_difference] {
                let d = d.unwrap();
                proptest::prop_assert!((0.0..=1.0).contains(&d));
            }
            for q in [r.demographic_parity_ratio, r.equalized_odds_ratio, r.equal_opportunity_ratio].into_iter().flatten() {
                proptest::prop_assert!((0.0..=1.0).contains(&q));
            }
            proptest::prop_assert_eq!(r.four_fifths.flagged, r.demographic_parity_ratio.is_some_and(|q| q < 0.8));
            proptest::prop_assert_eq!(r.groups.iter().map(|x| x.count).sum::<u64>(), rows.len() as u64);
        }
    }

    #[test]
    fn too_many_groups_is_a_clear_error() {
        let n = MAX_GROUPS + 5;
        let g: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let err = assess("id", "1", &vec![true; n], &vec![true; n], &g, FOUR_FIFTHS).unwrap_err();
        assert!(err.to_string().starts_with("column `id`: has more than 1000 distinct values"), "{err}");
    }
}
