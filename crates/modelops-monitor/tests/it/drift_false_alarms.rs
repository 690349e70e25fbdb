//! Under no drift a 5 % test should raise about 5 % false alarms. The
//! default mode's two-sample contingency chi-square does; Evidently's
//! goodness-of-fit chi-square (reference shares taken as exact) does not.

use modelops_monitor::data::{Categorical, Column, ColumnData, SourceType, Table};
use modelops_monitor::drift::{compare, DriftOptions, Method, Mode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LABELS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];

fn sample(rng: &mut StdRng, n: usize, name: &str) -> Table {
    let values: Vec<Option<&str>> = (0..n).map(|_| Some(LABELS[rng.random_range(0..LABELS.len())])).collect();
    Table {
        path: name.into(),
        rows: n,
        columns: vec![Column {
            name: "cat".into(),
            source: SourceType::String,
            data: ColumnData::Categorical(Categorical::from_values(&values)),
        }],
    }
}

fn false_alarm_rate(mode: Mode, reps: usize, n: usize) -> f64 {
    let mut rng = StdRng::seed_from_u64(20240605);
    let options = DriftOptions { mode, method: Some(Method::ChiSquare), ..DriftOptions::default() };
    let mut alarms = 0;
    for _ in 0..reps {
        let reference = sample(&mut rng, n, "ref");
        let current = sample(&mut rng, n, "cur");
        let report = compare(&reference, &current, &options).unwrap();
        let column = &report.columns[0];
        assert!(column.not_computed.is_none(), "{:?}", column.not_computed);
        alarms += usize::from(column.drift_detected);
    }
    alarms as f64 / reps as f64
}

#[test]
fn default_chi_square_keeps_its_nominal_false_alarm_rate() {
    // 400 undrifted pairs of 1,000 rows, 8 equally likely categories.
    let default = false_alarm_rate(Mode::Default, 400, 1000);
    let evidently = false_alarm_rate(Mode::Evidently, 400, 1000);
    eprintln!("false-alarm rate at 5 %: default {default}, evidently {evidently}");
    // Binomial(400, 0.05) stays within [0.025, 0.08] with probability > 0.99.
    assert!((0.025..=0.08).contains(&default), "default mode false-alarm rate {default}");
    // The goodness-of-fit statistic is about twice chi-square(7): P(χ²₇ > 7.03) ≈ 0.43.
    assert!(evidently > 0.3, "evidently mode false-alarm rate {evidently}");
}
