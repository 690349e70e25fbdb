"""Synthetic card transactions with concept drift injected at a known row.

    python data.py --rows N --drift-at K --seed S --out FILE   (FILE: .csv or .parquet)

Rows are in time order. Rows [0, K) come from regime A ("before"), rows
[K, N) from regime B ("after"). Columns, in this order:

    amount         float64  transaction amount, currency units (2 decimals)
    hour           float64  hour of day, whole numbers 0..23
    merchant_risk  float64  merchant risk score in [0, 1]
    distance_km    float64  distance from the card holder's home
    velocity_1h    float64  smoothed rate of transactions on the card in the last hour
    card_age_days  float64  days since the card was issued (whole days)
    is_fraud       int64    1 = fraud, 0 = legitimate

The two regimes differ in two ways:

* Covariate shift (P(x) changes): in B, transactions happen farther from
  home (distance_km), in faster bursts (velocity_1h) and at riskier
  merchants (merchant_risk). A Kolmogorov-Smirnov test on a few hundred
  rows flags these three clearly; amount, hour and card_age_days keep
  their distributions.
* Concept change (P(fraud | x) changes): in A, fraud is large amounts at
  night at risky merchants; in B, fraud is small amounts (card testing),
  at high velocity, far from home. A model fitted on A ranks B's fraud
  badly (its amount coefficient even points the wrong way), while a model
  fitted on B ranks it well.

Both regimes have roughly 15-20% fraud, so samples of a few hundred rows
hold enough positives to train and evaluate on.

Deterministic: the same arguments give byte-identical output. Each regime
draws from its own child generator of numpy's default_rng(seed), so rows
[0, K) depend only on (K, seed) and not on N.

Importable: generate(rows, drift_at, seed) -> pandas.DataFrame.
"""

import argparse
import sys

import numpy as np
import pandas as pd

FEATURES = ["amount", "hour", "merchant_risk", "distance_km", "velocity_1h", "card_age_days"]
LABEL = "is_fraud"
COLUMNS = FEATURES + [LABEL]

# Location and scale of log(amount): the same in both regimes.
LOG_AMOUNT_MEAN, LOG_AMOUNT_SD = 3.6, 0.8  # median about 37


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _regime(rng, n, after):
    """n transactions of regime A (after=False) or B (after=True)."""
    # --- features -----------------------------------------------------
    amount = rng.lognormal(LOG_AMOUNT_MEAN, LOG_AMOUNT_SD, n)
    # Mostly daytime activity (around 14:00) plus a uniform background.
    daytime = rng.normal(14.0, 4.0, n)
    anytime = rng.uniform(0.0, 24.0, n)
    hour = np.floor(np.where(rng.random(n) < 0.8, daytime, anytime) % 24.0)
    if after:
        merchant_risk = rng.beta(3.5, 4.0, n)  # mean ~0.47 (was ~0.25)
        distance_km = rng.lognormal(2.6, 0.9, n)  # median ~13 km (was ~4.5)
        velocity_1h = rng.gamma(3.0, 1.5, n)  # mean 4.5 (was 1.5)
    else:
        merchant_risk = rng.beta(2.0, 6.0, n)
        distance_km = rng.lognormal(1.5, 0.9, n)
        velocity_1h = rng.gamma(1.5, 1.0, n)
    card_age_days = np.floor(rng.uniform(30.0, 3650.0, n))

    # Round to the precision a real feed would carry; the labels below are
    # computed from the rounded values, so the file is self-consistent.
    amount = np.round(amount, 2)
    merchant_risk = np.round(merchant_risk, 4)
    distance_km = np.round(distance_km, 2)
    velocity_1h = np.round(velocity_1h, 3)

    # --- fraud pattern (the concept) -----------------------------------
    z_amount = (np.log(np.maximum(amount, 0.01)) - LOG_AMOUNT_MEAN) / LOG_AMOUNT_SD
    if after:
        # Card testing: small amounts, bursts of transactions, far from
        # home; risky merchants still matter a little.
        z_distance = (np.log(np.maximum(distance_km, 0.01)) - 2.6) / 0.9
        logit = -5.3 - 3.6 * z_amount + 1.2 * (velocity_1h - 4.5) + 2.4 * z_distance + 3.0 * (merchant_risk - 0.45)
    else:
        # Large amounts, at night (22:00-04:59), at risky merchants.
        night = ((hour < 5) | (hour >= 22)).astype(float)
        logit = -3.4 + 2.2 * z_amount + 2.5 * night + 10.0 * (merchant_risk - 0.25)
    is_fraud = (rng.random(n) < _sigmoid(logit)).astype(np.int64)

    return pd.DataFrame(
        {
            "amount": amount,
            "hour": hour,
            "merchant_risk": merchant_risk,
            "distance_km": distance_km,
            "velocity_1h": velocity_1h,
            "card_age_days": card_age_days,
            LABEL: is_fraud,
        },
        columns=COLUMNS,
    )


def generate(rows, drift_at, seed):
    """`rows` transactions in time order; regime B from row `drift_at` on."""
    rows, drift_at = int(rows), int(drift_at)
    if rows < 0 or not 0 <= drift_at <= rows:
        raise ValueError(f"need 0 <= drift_at <= rows, got rows={rows} drift_at={drift_at}")
    # One child generator per regime (Generator.spawn, numpy >= 1.25).
    rng_a, rng_b = np.random.default_rng(seed).spawn(2)
    frame = pd.concat([_regime(rng_a, drift_at, after=False), _regime(rng_b, rows - drift_at, after=True)], ignore_index=True)
    # Pin the dtypes (an empty regime would otherwise change nothing, but be explicit).
    return frame.astype({c: "float64" for c in FEATURES} | {LABEL: "int64"})


def write(frame, path):
    """Writes `frame` as CSV or Parquet, chosen by the file's extension."""
    lower = str(path).lower()
    if lower.endswith(".csv"):
        frame.to_csv(path, index=False, lineterminator="\n")
    elif lower.endswith(".parquet"):
        frame.to_parquet(path, index=False, engine="pyarrow")
    else:
        raise ValueError(f"{path}: the output must end in .csv or .parquet")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Synthetic card transactions with drift injected at row --drift-at.")
    parser.add_argument("--rows", type=int, required=True, help="number of rows (N)")
    parser.add_argument("--drift-at", type=int, required=True, help="first row of regime B (K, 0 <= K <= N)")
    parser.add_argument("--seed", type=int, default=0, help="seed for numpy's default_rng (default 0)")
    parser.add_argument("--out", required=True, help="output file, .csv or .parquet")
    args = parser.parse_args(argv)
    if not str(args.out).lower().endswith((".csv", ".parquet")):
        parser.error(f"--out {args.out}: must end in .csv or .parquet")
    try:
        frame = generate(args.rows, args.drift_at, args.seed)
    except ValueError as e:
        parser.error(str(e))
    write(frame, args.out)
    before, after = frame.iloc[: args.drift_at], frame.iloc[args.drift_at :]
    rate = lambda part: f"{part[LABEL].mean():.3f}" if len(part) else "n/a"  # noqa: E731
    print(f"wrote {len(frame)} rows to {args.out}: drift at row {args.drift_at}, fraud rate {rate(before)} before, {rate(after)} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
