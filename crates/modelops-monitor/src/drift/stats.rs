//! The statistics, each written to give SciPy's / NumPy's answer to the last
//! few ulps: same algorithm, same order of floating-point operations where
//! that order changes the result. Inputs are already cleaned (finite values,
//! no missing); sorted where a function says so.
//!
//! Finite values can still overflow on the way: the range of values
//! spanning ±1e308 is +inf, and so are their squares. Where that happens
//! NumPy and SciPy give NaN, inf or an error, so there is no number to
//! reproduce; the functions here then compute the scale-free quantity on
//! values scaled by a power of two (exact in binary floating point), which
//! is what the method means. Inputs that do not overflow take the original
//! path, unchanged.

use statrs::function::erf::erfc;
use statrs::function::gamma::gamma_ur;

/// `scipy.special.ndtr`: the standard normal CDF, computed as Cephes does
/// (erf near zero, erfc in the tails) so `1 - ndtr(z)` rounds like SciPy's.
pub fn ndtr(a: f64) -> f64 {
    let x = a * std::f64::consts::FRAC_1_SQRT_2;
    let z = x.abs();
    if z < std::f64::consts::FRAC_1_SQRT_2 {
        0.5 + 0.5 * statrs::function::erf::erf(x)
    } else {
        let y = 0.5 * erfc(z);
        if x > 0.0 {
            1.0 - y
        } else {
            y
        }
    }
}

/// `scipy.stats.chi2.sf(x, df)` = Q(df/2, x/2).
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    gamma_ur(df / 2.0, x / 2.0)
}

/// `scipy.special.rel_entr` as SciPy 1.17 computes it (`xsf::rel_entr`):
/// `log1p` when x and y are close, which matters for nearly equal
/// distributions, where the terms of a divergence almost cancel.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 || y <= 0.0 {
        return if x == 0.0 && y >= 0.0 { 0.0 } else { f64::INFINITY };
    }
    let ratio = x / y;
    if 0.5 < ratio && ratio < 2.0 {
        x * ((x - y) / y).ln_1p()
    } else if f64::MIN_POSITIVE < ratio && ratio < f64::INFINITY {
        x * ratio.ln()
    } else {
        x * (x.ln() - y.ln())
    }
}

/// `scipy.spatial.distance.jensenshannon(p, q)` with natural log: the JS
/// *distance* (square root of the divergence), after normalising p and q.
pub fn jensenshannon(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    let mut left = 0.0;
    let mut right = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let a = a / sp;
        let b = b / sq;
        let m = (a + b) / 2.0;
        left += rel_entr(a, m);
        right += rel_entr(b, m);
    }
    ((left + right) / 2.0).sqrt()
}

/// Population stability index over two percentage vectors (already
/// zero-filled): Σ (r − c)·ln(r / c).
pub fn psi(r: &[f64], c: &[f64]) -> f64 {
    r.iter().zip(c).map(|(&a, &b)| (a - b) * (a / b).ln()).sum()
}

/// `scipy.stats.entropy(p, q)`: KL(p‖q) after normalising both.
pub fn kl_div(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    p.iter().zip(q).map(|(&a, &b)| rel_entr(a / sp, b / sq)).sum()
}

/// Evidently's epsilon fill for PSI and KL: zeros become `min_nonzero/1e6`,
/// or `1e-4` when the smallest non-zero share exceeds `1e-4`. No
/// renormalisation afterwards (as in Evidently).
pub fn fill_zeroes(v: &mut [f64]) {
    let min = v.iter().copied().filter(|&x| x != 0.0).fold(f64::INFINITY, f64::min);
    if !min.is_finite() {
        return;
    }
    let fill = if min <= 0.0001 { min / 1e6 } else { 0.0001 };
    for x in v.iter_mut() {
        if *x == 0.0 {
            *x = fill;
        }
    }
}

/// Pearson's chi-square goodness of fit, `scipy.stats.chisquare(f_obs, f_exp)`:
/// returns (statistic, p-value). An expected count of zero gives ∞ and p = 0.
pub fn chisquare(f_obs: &[f64], f_exp: &[f64]) -> (f64, f64) {
    let stat: f64 = f_obs.iter().zip(f_exp).map(|(&o, &e)| (o - e) * (o - e) / e).sum();
    let df = f_obs.len() as f64 - 1.0;
    (stat, chi2_sf(stat, df))
}

/// Chi-square test of homogeneity on the 2×K table of reference and current
/// counts (`scipy.stats.chi2_contingency(..., correction=False)` after
/// dropping categories absent from both): the two-sample test. Returns
/// (statistic, p-value, degrees of freedom).
pub fn chi2_contingency(reference: &[u64], current: &[u64]) -> (f64, f64, f64) {
    let n1: u64 = reference.iter().sum();
    let n2: u64 = current.iter().sum();
    let n = (n1 + n2) as f64;
    let mut stat = 0.0;
    let mut k = 0usize;
    for (&a, &b) in reference.iter().zip(current) {
        let col = (a + b) as f64;
        if col == 0.0 {
            continue;
        }
        k += 1;
        let e1 = col * n1 as f64 / n;
        let e2 = col * n2 as f64 / n;
        stat += (a as f64 - e1).powi(2) / e1 + (b as f64 - e2).powi(2) / e2;
    }
    if k < 2 {
        // One category on both sides: nothing can differ.
        return (0.0, 1.0, 0.0);
    }
    let df = (k - 1) as f64;
    (stat, chi2_sf(stat, df), df)
}

/// Evidently's two-proportion pooled z-test (`z_stattest.py`): `ones` are the
/// counts of "not the first key" on each side. Two-sided p-value computed as
/// `2 * (1 - norm.cdf(|z|))`, cancellation included.
pub fn z_test(ones_ref: u64, n_ref: u64, ones_cur: u64, n_cur: u64) -> f64 {
    let (n1, n2) = (n_ref as f64, n_cur as f64);
    let p1 = ones_ref as f64 / n1;
    let p2 = ones_cur as f64 / n2;
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    2.0 * (1.0 - ndtr(z.abs()))
}

/// A power of two `s` with `m·s` in [0.5, 1) for a finite `m > 0`, else 1.
/// Multiplying by it is exact (but for values it makes subnormal, far too
/// small beside `m` to matter).
pub fn unit_scale(m: f64) -> f64 {
    if !(m.is_finite() && m >= f64::MIN_POSITIVE) {
        return 1.0;
    }
    // m = 1.f × 2^(e − 1023), so s = 2^(1022 − e), in [2^-1024, 2^1021].
    let e = ((m.to_bits() >> 52) & 0x7ff) as i32;
    let k = 1022 - e;
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}

/// Population standard deviation (ddof = 0), two-pass like pandas' nanstd.
/// When the sum or the squares overflow (pandas gives inf or NaN), the
/// values are first scaled to magnitudes below 1.
pub fn std_pop(values: &[f64]) -> f64 {
    let sd = std_pop_scaled(values, 1.0);
    if sd.is_finite() || values.is_empty() {
        return sd;
    }
    let s = unit_scale(values.iter().fold(0.0f64, |m, x| m.max(x.abs())));
    std_pop_scaled(values, s) / s
}

/// The standard deviation of `values` × `s` (`s = 1`: `values` as given).
fn std_pop_scaled(values: &[f64], s: f64) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().map(|&x| x * s).sum::<f64>() / n;
    let ss: f64 = values.iter().map(|&x| (x * s - mean) * (x * s - mean)).sum();
    (ss / n).sqrt()
}

/// `wasserstein_sorted(u, v) / norm`. When the distance overflows (two
/// neighbouring values more than `f64::MAX` apart make a NaN or inf in
/// SciPy too) it is computed on the halved values against `norm / 2`: the
/// quotient, not the distance, is what the caller needs, and it is +inf
/// only when it exceeds `f64::MAX`.
pub fn normed_wasserstein(u: &[f64], v: &[f64], norm: f64) -> f64 {
    let w = wasserstein_sorted(u, v);
    if w.is_finite() || u.is_empty() || v.is_empty() {
        return w / norm;
    }
    wasserstein_scaled(u, v, 0.5) / (norm * 0.5)
}

/// `scipy.stats.wasserstein_distance(u, v)` for sorted samples: the area
/// between the two empirical CDFs, walked in one merge.
pub fn wasserstein_sorted(u: &[f64], v: &[f64]) -> f64 {
    wasserstein_scaled(u, v, 1.0)
}

/// The distance between `u` × `s` and `v` × `s` (`s = 1`: SciPy's).
fn wasserstein_scaled(u: &[f64], v: &[f64], s: f64) -> f64 {
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let (Some(&u0), Some(&v0)) = (u.first(), v.first()) else {
        return f64::NAN;
    };
    // `prev` is the last merged value; CDFs are evaluated at it (side right):
    // `du = i / nu`, `dv = j / nv`, updated only when `i` or `j` moves.
    let mut prev = u0.min(v0);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut du, mut dv) = (0.0f64, 0.0f64);
    let mut total = 0.0;
    loop {
        let next = match (u.get(i), v.get(j)) {
            (Some(&a), Some(&b)) => {
                if b < a {
                    b
                } else {
                    a
                }
            }
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        if next > prev {
            total += (du - dv).abs() * (next * s - prev * s);
            prev = next;
        }
        if u.get(i) == Some(&next) {
            i += 1;
            while u.get(i) == Some(&next) {
                i += 1;
            }
            du = i as f64 / nu;
        }
        if v.get(j) == Some(&next) {
            j += 1;
            while v.get(j) == Some(&next) {
                j += 1;
            }
            dv = j as f64 / nv;
        }
    }
    total
}

/// The two-sided two-sample K-S statistic on sorted samples, as
/// `scipy.stats.ks_2samp` finds it (ECDF differences evaluated at every
/// observed value, side right).
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut max_s = f64::NEG_INFINITY;
    let mut min_s = f64::INFINITY;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
        let d = i as f64 / n1 - j as f64 / n2;
        max_s = max_s.max(d);
        min_s = min_s.min(d);
    }
    let min_s = (-min_s).clamp(0.0, 1.0);
    if min_s > max_s {
        min_s
    } else {
        max_s
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `scipy.stats.ks_2samp(a, b)` p-value, two-sided, `method="auto"`: exact
/// when both samples have at most 10 000 values, otherwise (or when the
/// exact computation fails) Smirnov's asymptotic distribution,
/// `kstwo.sf(d, round(m·n/(m+n)))`. Returns (statistic, p-value); `None`
/// only for an empty sample.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut d = ks_statistic(a, b);
    let (n1, n2) = (a.len() as u64, b.len() as u64);
    let g = gcd(n1, n2);
    const MAX_AUTO_N: u64 = 10_000;
    if n1.max(n2) <= MAX_AUTO_N {
        let (dr, p) = attempt_exact_2kssamp(n1, n2, g, d);
        if let Some(p) = p {
            return Some((dr, p.clamp(0.0, 1.0)));
        }
        // SciPy keeps the rounded statistic when it falls back.
        d = dr;
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = m * n / (m + n);
    let p = super::kolmogorov::kstwo_sf(d, en.round_ties_even())?;
    Some((d, p.clamp(0.0, 1.0)))
}

/// The statistic rounded to the lattice `h / lcm(n1, n2)`, and the exact
/// p-value when SciPy's computation succeeds.
fn attempt_exact_2kssamp(n1: u64, n2: u64, g: u64, d: f64) -> (f64, Option<f64>) {
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return (d, Some(1.0));
    }
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside_method(n1, n2, g, h)
    };
    (d, (p.is_finite() && (0.0..=1.0).contains(&p)).then_some(p))
}

/// SciPy `_compute_prob_outside_square(n, h)`.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as i64, h as i64);
    let mut p = 0.0;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// SciPy `_compute_outer_prob_inside_method(m, n, g, h)` (Hodges, with
/// Viehmann's recursion for 1 − p).
fn outer_prob_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for x in a.iter_mut().take(maxj as usize).skip(minj as usize) {
        *x = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((((ng * i - h) as f64 / mg as f64).floor() as i64) + 1).max(0);
        minj = minj.min(n);
        maxj = (((ng * i + h) as f64 / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let idx = (jj + minj - lastminj) as usize;
            let prev = a.get(idx).copied().unwrap_or(1.0);
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            if let Some(slot) = a.get_mut(jj as usize) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = (maxj - minj) as usize;
            let end = (start + (lastlen - curlen) as usize).min(a.len());
            for x in &mut a[start.min(end)..end] {
                *x = 1.0;
            }
        }
    }
    a.get((maxj - minj - 1) as usize).copied().unwrap_or(f64::NAN)
}

/// `np.histogram_bin_edges(x, "sturges")` from the sample's size, min and max:
/// width = ptp / (log2(n) + 1), ceil(ptp / width) equal bins, edges by
/// `np.linspace` (i·step + start, last edge exactly `max`).
///
/// When `max - min` overflows, NumPy fails (`int(nan)`): the edges are then
/// those of the halved range, doubled, which are exactly the edges NumPy
/// would give were its exponent range wider.
pub fn sturges_edges(n: usize, min: f64, max: f64) -> Vec<f64> {
    if (max - min).is_finite() {
        return sturges_edges_unscaled(n, min, max);
    }
    sturges_edges_unscaled(n, min * 0.5, max * 0.5).into_iter().map(|e| (e * 2.0).clamp(min, max)).collect()
}

fn sturges_edges_unscaled(n: usize, min: f64, max: f64) -> Vec<f64> {
    let (mut first, mut last) = (min, max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let ptp = max - min; // `_ptp(x)` is the data's range, 0 for constant data
    let width = ptp / ((n as f64).log2() + 1.0);
    let bins = if width != 0.0 && n > 0 { ((last - first) / width).ceil() as usize } else { 1 };
    linspace(first, last, bins + 1)
}

/// `np.linspace(start, stop, num)` with `endpoint=True`.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut out: Vec<f64> = if step == 0.0 {
        (0..num).map(|i| i as f64 / div * delta + start).collect()
    } else {
        (0..num).map(|i| i as f64 * step + start).collect()
    };
    if let Some(last) = out.last_mut() {
        *last = stop;
    }
    out
}

/// `np.histogram(sorted, edges)[0]` for a sorted sample: bins are half-open
/// `[e_i, e_{i+1})` except the last, which is closed; values outside are
/// not counted.
pub fn histogram_sorted(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    if edges.len() < 2 {
        return Vec::new();
    }
    let last = edges.len() - 1;
    let pos: Vec<usize> = edges
        .iter()
        .enumerate()
        .map(|(k, &e)| {
            if k == last {
                sorted.partition_point(|&x| x <= e)
            } else {
                sorted.partition_point(|&x| x < e)
            }
        })
        .collect();
    pos.windows(2).map(|w| (w[1] - w[0]) as u64).collect()
}

/// Index of the bin of `x` under `np.histogram` semantics, or `None` when
/// outside `[e_0, e_last]`.
pub fn bin_index(edges: &[f64], x: f64) -> Option<usize> {
    let last = edges.len().checked_sub(1)?;
    if last == 0 || !(x >= edges[0] && x <= edges[last]) {
        return None;
    }
    if x == edges[last] {
        return Some(last - 1);
    }
    // Number of edges <= x, minus one.
    Some(edges.partition_point(|&e| e <= x) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        a == b || ((a - b).abs() <= rel * a.abs().max(b.abs()))
    }

    #[test]
    fn chi2_sf_matches_scipy() {
        // scipy.stats.chi2.sf(x, df) for (x, df):
        let cases = [
            (3.5, 2.0, 0.1737739434504451),
            (10.0, 3.0, 0.01856613546304325),
            (0.5, 1.0, 0.47950012218695337),
            (150.0, 7.0, 4.059880032776308e-29),
            (1234.5, 49.0, 2.654955388578669e-226),
            (40.0, 40.0, 0.4702572668392401),
        ];
        for (x, df, want) in cases {
            let got = chi2_sf(x, df);
            assert!(close(got, want, 1e-12), "chi2.sf({x}, {df}) = {got}, scipy {want}");
        }
    }

    #[test]
    fn z_test_matches_evidently() {
        // 2 * (1 - scipy.stats.norm.cdf(abs(z))) for Evidently's pooled z of
        // 30/100 vs 45/120, and of 300/1000 vs 420/1000.
        let p = z_test(30, 100, 45, 120);
        assert!(close(p, 0.2425835793483211, 1e-9), "{p}");
        let p = z_test(300, 1000, 420, 1000);
        assert!(close(p, 2.2684748524071097e-08, 1e-9), "{p}");
    }

    #[test]
    fn ks_exact_matches_scipy() {
        // scipy.stats.ks_2samp([0,1,2,3,4,5,6,7,8,9], [2.5,3.5,4.5,12,13]) ->
        // (0.4, 0.6546786546786546); equal sizes:
        // ks_2samp(range(20), [x + 5.5 for x in range(20)]) -> (0.3, 0.33559098126008213)
        let a: Vec<f64> = (0..10).map(f64::from).collect();
        let (d, p) = ks_2samp(&a, &[2.5, 3.5, 4.5, 12.0, 13.0]).unwrap();
        assert!(close(d, 0.4, 1e-15) && close(p, 0.6546786546786546, 1e-12), "{d} {p}");
        let a: Vec<f64> = (0..20).map(f64::from).collect();
        let b: Vec<f64> = (0..20).map(|x| f64::from(x) + 5.5).collect();
        let (d, p) = ks_2samp(&a, &b).unwrap();
        assert!(close(d, 0.3, 1e-15) && close(p, 0.33559098126008213, 1e-12), "{d} {p}");
    }

    #[test]
    fn ks_asymptotic_matches_scipy() {
        // a = [(i*7919 % 10007)/10007 for i in range(12000)]
        // b = [((i*104729 % 1009)/1009)**e for i in range(800)]
        // scipy.stats.ks_2samp(a, b) for e = 1.3 and 1.05 (max n > 10 000:
        // kstwo.sf(d, round(12000*800/12800)) = kstwo.sf(d, 750)).
        let mut a: Vec<f64> = (0..12000u64).map(|i| ((i * 7919) % 10007) as f64 / 10007.0).collect();
        a.sort_unstable_by(f64::total_cmp);
        for (e, want_d, want_p) in [(1.3, 0.09825, 9.384418107433995e-07), (1.05, 0.01974999999999999, 0.9259899774839087)] {
            let mut b: Vec<f64> = (0..800u64).map(|i| (((i * 104729) % 1009) as f64 / 1009.0).powf(e)).collect();
            b.sort_unstable_by(f64::total_cmp);
            let (d, p) = ks_2samp(&a, &b).unwrap();
            assert!(close(d, want_d, 1e-12) && close(p, want_p, 1e-10), "{e}: {d} {p}");
        }
    }

    #[test]
    fn wasserstein_matches_scipy() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) == 5.0
        // scipy.stats.wasserstein_distance([3.4, 3.9, 7.5, 7.8], [4.5, 1.4]) == 2.7
        assert!(close(wasserstein_sorted(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]), 5.0, 1e-15));
        assert!(close(wasserstein_sorted(&[3.4, 3.9, 7.5, 7.8], &[1.4, 4.5]), 2.7, 1e-14));
    }

    #[test]
    fn overflowing_ranges_give_the_scaled_answer() {
        // Scaling by 2^-1000 is exact here and nothing overflows after it.
        let down = 2f64.powi(-1000);
        let u = [-1e308, -3e307, 2e307, 1e308];
        let v = [-1e308, 5e307, 1e308];
        let (us, vs): (Vec<f64>, Vec<f64>) = (u.iter().map(|x| x * down).collect(), v.iter().map(|x| x * down).collect());
        // Sturges edges: NumPy's on the scaled range, scaled back.
        let edges = sturges_edges(7, -1e308, 1e308);
        let small = sturges_edges(7, -1e308 * down, 1e308 * down);
        assert_eq!(edges, small.iter().map(|e| e / down).collect::<Vec<_>>());
        assert_eq!(histogram_sorted(&u, &edges), histogram_sorted(&us, &small));
        // Standard deviation and normed Wasserstein are scale-free.
        assert!(close(std_pop(&u), std_pop(&us) / down, 1e-15), "{}", std_pop(&u));
        let norm = std_pop(&u);
        let want = normed_wasserstein(&us, &vs, std_pop(&us));
        assert!(close(normed_wasserstein(&u, &v, norm), want, 1e-15), "{}", normed_wasserstein(&u, &v, norm));
        // A gap wider than f64::MAX: SciPy's 0 × inf is NaN; the distance is 0.
        assert_eq!(normed_wasserstein(&[-1e308, 1e308], &[-1e308, 1e308], 1e308), 0.0);
        // And +inf only where the quotient is beyond f64::MAX.
        assert_eq!(normed_wasserstein(&[-1e308], &[1e308], 0.001), f64::INFINITY);
        assert!(close(normed_wasserstein(&[-1e308], &[1e308], 1e308), 2.0, 1e-15));
        assert_eq!(unit_scale(1.0), 0.5);
        assert_eq!(unit_scale(1e308) * 1e308, 1e308 / 2f64.powi(1023) / 2.0);
    }

    #[test]
    fn sturges_edges_match_numpy() {
        // np.histogram_bin_edges([0.0, 0.3, 1.7, 10.0], "sturges") ->
        // [0., 3.33333333, 6.66666667, 10.]
        let e = sturges_edges(4, 0.0, 10.0);
        assert_eq!(e, vec![0.0, 10.0 / 3.0, 2.0 * (10.0 / 3.0), 10.0]);
        assert_eq!(sturges_edges(5, 2.0, 2.0), vec![1.5, 2.5]);
        let h = histogram_sorted(&[0.0, 0.3, 1.7, 10.0], &e);
        assert_eq!(h, vec![3, 0, 1]);
    }

    #[test]
    fn jensenshannon_of_close_distributions_matches_scipy() {
        // scipy.spatial.distance.jensenshannon([0.500151, 0.499849], [0.500185, 0.499815]):
        // the terms nearly cancel, so rel_entr's log1p branch shows.
        let d = jensenshannon(&[0.500151, 0.499849], &[0.500185, 0.499815]);
        assert!(close(d, 2.4041633074234402e-05, 1e-12), "{d:e}");
    }

    #[test]
    fn jensenshannon_bounded_by_sqrt_ln2() {
        let d = jensenshannon(&[1.0, 0.0], &[0.0, 1.0]);
        assert!(close(d, std::f64::consts::LN_2.sqrt(), 1e-15));
        assert_eq!(jensenshannon(&[0.2, 0.8], &[0.2, 0.8]), 0.0);
    }

    #[test]
    fn contingency_equals_pooled_z_squared_for_two_categories() {
        let (stat, p, df) = chi2_contingency(&[70, 30], &[75, 45]);
        assert_eq!(df, 1.0);
        let pz = z_test(30, 100, 45, 120);
        assert!(close(p, pz, 1e-9), "{p} vs {pz}");
        assert!(stat > 0.0);
    }
}

#[cfg(test)]
mod erfc_check {
    /// statrs' erfc is within ~1e-10 of Cephes', which bounds how closely
    /// the Z-test p-value can follow SciPy's; the compatibility tests need 1e-9.
    #[test]
    fn statrs_erfc_is_within_1e9_of_scipy() {
        // scipy.special.erfc(x)
        let cases = [
            (0.8, 0.2578990352923395),
            (1.5, 0.03389485352468927),
            (3.0, 2.2090496998585445e-05),
            (6.0, 2.1519736712498913e-17),
            (10.0, 2.0884875837625446e-45),
            (20.0, 5.395865611607901e-176),
        ];
        for (x, want) in cases {
            let got = statrs::function::erf::erfc(x);
            assert!((got - want).abs() / want < 1e-9, "erfc({x}) = {got}, scipy {want}");
        }
    }
}
