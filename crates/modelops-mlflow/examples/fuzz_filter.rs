//! A fuzzer for the filter and `order_by` parsers that needs no nightly
//! toolchain: feeds them random inputs — raw bytes, and fragments of the
//! grammar glued at random — for a number of seconds, and stops at the
//! first panic (the parsers must answer every input with a value or an
//! error). `cargo run --release -p modelops-mlflow --example fuzz_filter -- 60`
//!
//! A file's contents can be replayed instead: `… --example fuzz_filter -- FILE`,
//! or standard input's: `… --example fuzz_filter -- - < FILE` (so an
//! external mutator can drive it one input per run). Each input goes to
//! both parsers for every entity, as a filter and as an `order_by` clause.

use modelops_mlflow::filter::{parse_filter, parse_order_by, Entity};
use std::time::{Duration, Instant};

const FRAGMENTS: &[&str] = &[
    "metrics.", "params.", "tags.", "attributes.", "datasets.", "`", "'", "\"", " AND ", " and ", " OR ", "(", ")", ",", " IN ", " NOT ",
    "=", "!=", "<>", "<", "<=", ">", ">=", " LIKE ", " ILIKE ", "x", "rmse", "1.5", "-2e-3", "-", "e", ".", " ", "\\", "run_id", "name",
    "version_number", "é", "%", "_", "ASC", "DESC", "\u{202e}", "\0",
];

/// xorshift64*: reproducible from the seed printed at start.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

fn check(text: &str) {
    for entity in [Entity::Run, Entity::RegisteredModel, Entity::ModelVersion, Entity::LoggedModel] {
        let _ = parse_filter(entity, text);
        let _ = parse_order_by(entity, &[text.to_string()]);
    }
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "10".into());
    if arg == "-" {
        let mut bytes = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes) {
            eprintln!("stdin: {e}");
            std::process::exit(2);
        }
        check(&String::from_utf8_lossy(&bytes));
        println!("stdin: no panic");
        return;
    }
    if let Ok(bytes) = std::fs::read(&arg) {
        check(&String::from_utf8_lossy(&bytes));
        println!("{arg}: no panic");
        return;
    }
    let seconds: u64 = arg.parse().unwrap_or(10);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
    println!("seed {seed}, {seconds} s");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut inputs = 0u64;
    while Instant::now() < deadline {
        for _ in 0..1000 {
            let text = if rng.below(2) == 0 {
                let bytes: Vec<u8> = (0..rng.below(64)).map(|_| (rng.next() & 0xff) as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..rng.below(24)).map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())]).collect()
            };
            check(&text);
            inputs += 1;
        }
    }
    println!("{inputs} inputs, no panic");
}
