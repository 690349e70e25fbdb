//! Columns whose values span ±1e308, so `max - min` overflows to +inf.
//! Every drift method here is scale-free: multiplying both samples by a
//! power of two (exact in binary floating point) must not change a score.
//! So a huge column must score like the same column scaled down into the
//! range where nothing overflows, or say why it is not computed.

use modelops_monitor::data::{Column, ColumnData, SourceType, Table};
use modelops_monitor::drift::{compare, compare_profile, DriftOptions, Histogram, Method, Mode};
use modelops_monitor::profile::Profile;

fn table(path: &str, values: Vec<f64>) -> Table {
    Table {
        path: path.into(),
        rows: values.len(),
        columns: vec![Column { name: "x".into(), source: SourceType::Float, data: ColumnData::Numeric(values) }],
    }
}

/// Reference spread evenly over [-1e308, 1e308]; the current sample is
/// shifted up and has one value at -1e308.
fn huge() -> (Vec<f64>, Vec<f64>) {
    let reference = (-40..=40).map(|k| f64::from(k) * 2.5e306).collect();
    let mut current: Vec<f64> = (-10..=40).map(|k| f64::from(k) * 2.5e306).collect();
    current.push(-1e308);
    (reference, current)
}

fn scaled(values: &[f64]) -> Vec<f64> {
    // 2^-1000: values come down to about 1e7, exactly.
    values.iter().map(|x| x * 2f64.powi(-1000)).collect()
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn evidently_mode_scores_a_huge_column_like_the_same_column_scaled_down() {
    let (r, c) = huge();
    let (big_ref, big_cur) = (table("ref.csv", r.clone()), table("cur.csv", c.clone()));
    let (small_ref, small_cur) = (table("ref.csv", scaled(&r)), table("cur.csv", scaled(&c)));
    let methods =
        [None, Some(Method::Ks), Some(Method::Wasserstein), Some(Method::Psi), Some(Method::JensenShannon), Some(Method::KlDiv), Some(Method::Hellinger)];
    for method in methods {
        let options = DriftOptions { mode: Mode::Evidently, method, ..DriftOptions::default() };
        let big = compare(&big_ref, &big_cur, &options).unwrap();
        let small = compare(&small_ref, &small_cur, &options).unwrap();
        let (b, s) = (&big.columns[0], &small.columns[0]);
        assert_eq!(b.not_computed, None, "{method:?}");
        let (bs, ss) = (b.score.unwrap(), s.score.unwrap());
        assert!(close(bs, ss), "{method:?}: score {bs} on the huge column, {ss} scaled down");
        assert!(s.drift_detected, "{method:?}: the scaled-down column drifts ({ss})");
        assert_eq!(b.drift_detected, s.drift_detected, "{method:?}");
        let (Some(Histogram::Bins { edges, reference, current }), Some(Histogram::Bins { reference: sr, current: sc, .. })) =
            (&b.histogram, &s.histogram)
        else {
            panic!("{method:?}: no numeric histogram")
        };
        assert!(edges.len() > 2 && edges.windows(2).all(|w| w[0] < w[1] && w[1].is_finite()), "{edges:?}");
        assert_eq!((reference, current), (sr, sc), "{method:?}");
    }
}

#[test]
fn default_mode_says_why_a_huge_reference_is_not_computed_on_the_fly_and_from_a_saved_profile() {
    let (r, c) = huge();
    let (reference, current) = (table("ref.csv", r), table("cur.csv", c));
    let reason = "values from `-1e308` to `1e308` are too large to profile: their variance overflows f64";
    let on_the_fly = compare(&reference, &current, &DriftOptions::default()).unwrap();
    assert_eq!(on_the_fly.columns[0].not_computed.as_deref(), Some(reason));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ref.profile.json");
    Profile::fit(&reference, None, &[], &[]).unwrap().save(&path).unwrap();
    let profile = Profile::load(&path).unwrap_or_else(|e| panic!("the saved profile does not load: {e}"));
    let saved = compare_profile(&profile, "ref.profile.json", &current, &DriftOptions::default()).unwrap();
    assert_eq!(saved.columns[0].not_computed.as_deref(), Some(reason));
    assert_eq!(saved.columns[0].score, None);
}

#[test]
fn default_mode_scores_huge_current_values_against_a_normal_reference() {
    // Wasserstein (reference > 1000 values) with current values at both
    // ends of the f64 range: a score and a drift verdict, not "undefined".
    let reference: Vec<f64> = (0..2000).map(|i| f64::from(i) / 10.0).collect();
    let mut current = reference.clone();
    current.extend([-1e308, 1e308]);
    let report = compare(&table("ref.csv", reference), &table("cur.csv", current), &DriftOptions::default()).unwrap();
    let x = &report.columns[0];
    assert_eq!(x.method, Some(Method::Wasserstein));
    assert_eq!(x.not_computed, None);
    assert!(x.drift_detected, "{:?}", x.score);
}
