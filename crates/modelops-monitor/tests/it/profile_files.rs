//! Saved profiles as a user meets them: `profile fit` on a CSV, the JSON file
//! it writes, and `drift --profile` loading it again.

use std::path::{Path, PathBuf};

use modelops_monitor::data::read_table;
use modelops_monitor::drift::{compare, compare_profile, DriftOptions, DriftReport};
use modelops_monitor::profile::Profile;
use serde_json::{json, Value};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn column<'a>(report: &'a DriftReport, name: &str) -> &'a modelops_monitor::drift::ColumnDrift {
    report.columns.iter().find(|c| c.column == name).unwrap()
}

const NO_FINITE: &str = "no finite values in the reference (all missing or infinite)";

#[test]
fn columns_without_finite_values_save_a_profile_that_loads_and_say_not_computed() {
    let dir = tempfile::tempdir().unwrap();
    // `empty` has no values at all, `infs` only ±inf and NaN.
    let specials = ["inf", "-inf", "nan", ""];
    let mut reference = String::from("a,empty,infs\n");
    let mut current = String::from("a,empty,infs\n");
    for i in 0..30 {
        reference.push_str(&format!("{i},,{}\n", specials[i % specials.len()]));
        current.push_str(&format!("{},{}.5,{i}.25\n", i + 3, i));
    }
    let reference = read_table(&write(dir.path(), "ref.csv", &reference), None).unwrap();
    let current = read_table(&write(dir.path(), "cur.csv", &current), None).unwrap();
    let profile = Profile::fit(&reference, None, &[], &[]).unwrap();
    let path = dir.path().join("ref.profile.json");
    profile.save(&path).unwrap();
    let loaded = Profile::load(&path).unwrap_or_else(|e| panic!("the saved profile does not load: {e}"));
    let options = DriftOptions::default();
    let saved = compare_profile(&loaded, "ref.profile.json", &current, &options).unwrap();
    let on_the_fly = compare(&reference, &current, &options).unwrap();
    for report in [&saved, &on_the_fly] {
        for name in ["empty", "infs"] {
            let c = column(report, name);
            assert_eq!(c.not_computed.as_deref(), Some(NO_FINITE), "{name}");
            assert_eq!(c.score, None, "{name}");
            assert!(!c.drift_detected, "{name}");
        }
        assert!(column(report, "a").score.is_some());
        assert_eq!(report.number_of_columns, 1);
    }
}

#[test]
fn a_profile_saved_before_the_fix_with_an_empty_column_still_loads() {
    // What `profile fit` wrote for an all-missing column: `min`/`max` were
    // ±inf, which JSON can only spell `null`.
    let dir = tempfile::tempdir().unwrap();
    let legacy = r#"{"format":"modelops-profile","version":1,"source":"ref.csv","rows":3,"columns":[
        {"name":"a","source_type":{"int":{"has_missing":false}},"kind":"numerical","unusable":null,"count":3,"missing":0,
         "numeric":{"moments":{"count":3,"mean":2.0,"m2":2.0,"min":1.0,"max":3.0},"edges":[2.0,3.0],"bin_counts":[1,1,1],
         "values":[[1.0,1],[2.0,1],[3.0,1]],"sample":[1.0,2.0,3.0],"exact":true},"categories":null},
        {"name":"b","source_type":"float","kind":"numerical","unusable":null,"count":0,"missing":3,
         "numeric":{"moments":{"count":0,"mean":0.0,"m2":0.0,"min":null,"max":null},"edges":[],"bin_counts":[0],
         "values":[],"sample":[],"exact":true},"categories":null}]}"#;
    let path = write(dir.path(), "old.profile.json", legacy);
    let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let current = read_table(&write(dir.path(), "cur.csv", "a,b\n1,1.5\n2,2.5\n3,\n"), None).unwrap();
    let report = compare_profile(&profile, "old.profile.json", &current, &DriftOptions::default()).unwrap();
    assert_eq!(column(&report, "b").not_computed.as_deref(), Some(NO_FINITE));
    assert!(column(&report, "a").score.is_some());
}

/// A fitted profile as JSON: `x` continuous (quantile bins), `d` numeric
/// with three values (value counts), `c` categorical.
fn good_profile(dir: &Path) -> Value {
    let mut csv = String::from("x,d,c\n");
    for i in 0..60 {
        csv.push_str(&format!("{}.5,{}.5,{}\n", i * 7 % 61, i % 3, ["red", "green", "blue"][i % 3]));
    }
    let table = read_table(&write(dir, "train.csv", &csv), None).unwrap();
    let profile = Profile::fit(&table, None, &[], &[]).unwrap();
    serde_json::from_str(&profile.to_json().unwrap()).unwrap()
}

fn col<'a>(profile: &'a mut Value, name: &str) -> &'a mut Value {
    profile["columns"].as_array_mut().unwrap().iter_mut().find(|c| c["name"] == name).unwrap()
}

#[test]
fn loading_refuses_a_damaged_profile_naming_the_file_the_column_and_the_fault() {
    type Damage = fn(&mut Value);
    let cases: Vec<(&str, Option<&str>, Damage)> = vec![
        ("`format` is `other` (expected `modelops-profile`)", None, |p| p["format"] = json!("other")),
        ("version `2` is not supported (expected `1`)", None, |p| p["version"] = json!(2)),
        ("`numeric.sample` is not sorted: `", Some("x"), |p| {
            col(p, "x")["numeric"]["sample"].as_array_mut().unwrap().swap(3, 9)
        }),
        ("`numeric.sample` has `59` values but `count` is `60`", Some("x"), |p| {
            col(p, "x")["numeric"]["sample"].as_array_mut().unwrap().pop();
        }),
        ("`numeric.bin_counts` has `19` entries for `19` edges (expected `20`)", Some("x"), |p| {
            col(p, "x")["numeric"]["bin_counts"].as_array_mut().unwrap().pop();
        }),
        ("`numeric.bin_counts` add up to `61` but `count` is `60`", Some("x"), |p| {
            let b = &mut col(p, "x")["numeric"]["bin_counts"][0];
            *b = json!(b.as_u64().unwrap() + 1);
        }),
        ("`numeric.edges` are not strictly increasing: `", Some("x"), |p| {
            let e = &mut col(p, "x")["numeric"]["edges"];
            e[2] = e[1].clone();
        }),
        ("`numeric.moments.min` `99` is greater than `numeric.moments.max`", Some("x"), |p| {
            col(p, "x")["numeric"]["moments"]["min"] = json!(99.0)
        }),
        ("`numeric.moments.mean` is not a finite number", Some("x"), |p| {
            col(p, "x")["numeric"]["moments"]["mean"] = Value::Null
        }),
        ("`numeric.moments.count` is `59` but `count` is `60`", Some("x"), |p| {
            col(p, "x")["numeric"]["moments"]["count"] = json!(59)
        }),
        ("`count` is `0` but the column has a numeric profile", Some("x"), |p| col(p, "x")["count"] = json!(0)),
        ("`numeric.values` are not strictly increasing: `0.5` follows `0.5`", Some("d"), |p| {
            col(p, "d")["numeric"]["values"][1][0] = json!(0.5)
        }),
        ("`numeric.values` add up to `59` but `count` is `60`", Some("d"), |p| {
            col(p, "d")["numeric"]["values"][1][1] = json!(19)
        }),
        ("`categories` add up to `61` but `count` is `60`", Some("c"), |p| {
            col(p, "c")["categories"]["red"] = json!(21)
        }),
        ("`kind` is null but `unusable` gives no reason", Some("c"), |p| col(p, "c")["kind"] = Value::Null),
    ];
    let dir = tempfile::tempdir().unwrap();
    let good = good_profile(dir.path());
    let path = write(dir.path(), "good.json", &good.to_string());
    Profile::load(&path).unwrap();
    for (i, (fault, column, damage)) in cases.into_iter().enumerate() {
        let mut profile = good.clone();
        damage(&mut profile);
        let name = format!("bad-{i}.json");
        let path = write(dir.path(), &name, &profile.to_string());
        let err = match Profile::load(&path) {
            Ok(_) => panic!("{name} loaded though {fault}"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&format!("`{}`", path.display())), "{err}");
        if let Some(column) = column {
            assert!(err.contains(&format!("column `{column}`")), "{err}");
        }
        assert!(err.contains(fault), "expected {fault:?} in {err:?}");
        assert!(!err.ends_with('.'), "{err}");
    }
}
