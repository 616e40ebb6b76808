//! Number helpers of the measurements: the median, median wall time of repeated runs, and
//! the formatting of large numbers in the table.

use std::time::Instant;

use anyhow::Result;

pub const MB: f64 = 1_000_000.0;

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median wall time of `f` over `n` runs after `warm` unmeasured ones.
pub fn time_median<T>(warm: usize, n: usize, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    for _ in 0..warm {
        std::hint::black_box(f()?);
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(f()?);
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

pub fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x);
    let neg = s.starts_with('-');
    let digits: Vec<char> = s.trim_start_matches('-').chars().collect();
    let mut out = String::new();
    for (i, c) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(*c);
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}
