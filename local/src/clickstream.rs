//! A deterministic synthetic clickstream for the demo pipeline (`pipeline.toml`): page views,
//! sign-ups with e-mail/IP/phone PII, purchases with amounts, and a realistic share of
//! malformed records of every kind the pipeline classifies.

use serde_json::json;

/// One generated event: its partition key, bytes, and whether it should pass validation.
#[derive(Debug, Clone)]
pub struct Generated {
    pub partition_key: String,
    pub data: Vec<u8>,
    pub valid: bool,
}

/// Generates `n` events with event times in the hours before `now_secs`; `bad_per_mille` of
/// them are malformed. The same seed gives the same events.
pub fn generate(n: usize, now_secs: i64, bad_per_mille: u32, seed: u64) -> Vec<Generated> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|i| {
            let user = rng.u32(0..2_000);
            let ts = chrono::DateTime::from_timestamp(now_secs - rng.i64(60..4 * 3600), rng.u32(0..1_000_000_000))
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let partition_key = format!("user-{user}");
            if rng.u32(0..1000) < bad_per_mille {
                return Generated {
                    partition_key,
                    data: malformed(i, &ts, &mut rng),
                    valid: false,
                };
            }
            let v = match rng.u32(0..100) {
                0..=69 => json!({
                    "type": "page_view", "event_id": format!("pv-{seed}-{i}"), "ts": ts,
                    "session_id": format!("s-{}", user * 7 + rng.u32(0..3)),
                    "user_id": format!("u-{user}"),
                    "url": format!("https://shop.example.com/{}", ["", "cart", "p/42", "search?q=boots", "checkout"][rng.usize(0..5)]),
                    "referrer": if rng.bool() { json!("https://www.example.org/") } else { json!(null) },
                    "duration_ms": rng.u32(50..120_000),
                    "ip": format!("203.0.{}.{}", rng.u8(0..=255), rng.u8(1..=254)),
                    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
                }),
                70..=79 => json!({
                    "type": "signup", "event_id": format!("su-{seed}-{i}"), "ts": ts,
                    "user_id": format!("u-{user}"),
                    "email": format!("pii.user{user}@example.com"),
                    "ip": format!("198.51.{}.{}", rng.u8(0..=255), rng.u8(1..=254)),
                    "phone": format!("+64-21-{:07}", rng.u32(0..10_000_000)),
                    "country": (["NZ", "DE", "US", "BR", "JP"][rng.usize(0..5)]),
                    "plan": (["free", "pro", "team"][rng.usize(0..3)]),
                    "marketing_opt_in": rng.bool(),
                    "birth_date": format!("19{:02}-{:02}-{:02}", rng.u8(50..99), rng.u8(1..13), rng.u8(1..29)),
                }),
                _ => json!({
                    "type": "purchase", "order_id": format!("o-{seed}-{i}"), "ts": ts,
                    "user_id": format!("u-{user}"),
                    "amount": (rng.u32(100..50_000) as f64) / 100.0,
                    "currency": (["EUR", "USD", "NZD"][rng.usize(0..3)]),
                    "items": rng.u8(1..6),
                    "coupon": if rng.u8(0..10) == 0 { json!("WINTER10") } else { json!(null) },
                    "payment": {"method": (["card", "paypal"][rng.usize(0..2)]), "installments": rng.u8(1..4)},
                }),
            };
            Generated {
                partition_key,
                data: v.to_string().into_bytes(),
                valid: true,
            }
        })
        .collect()
}

fn malformed(i: usize, ts: &str, rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(0..6) {
        0 => format!("{{\"type\":\"page_view\",\"event_id\":\"bad-{i}\",\"ts\":").into_bytes(),
        1 => json!({"type": "refund", "id": i, "ts": ts}).to_string().into_bytes(),
        2 => json!({"type": "purchase", "order_id": format!("bad-{i}"), "ts": ts, "user_id": "u", "amount": "a lot", "currency": "EUR"}).to_string().into_bytes(),
        3 => json!({"type": "signup", "event_id": format!("bad-{i}"), "ts": ts, "user_id": "u"}).to_string().into_bytes(),
        4 => json!({"type": "page_view", "event_id": format!("bad-{i}"), "ts": "last tuesday", "session_id": "s", "url": "/"}).to_string().into_bytes(),
        _ => vec![0xC3, 0x28, b'{', b'}'],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_with_the_requested_share_of_bad_records() {
        let a = generate(2_000, 1_763_805_600, 30, 7);
        let b = generate(2_000, 1_763_805_600, 30, 7);
        assert_eq!(
            a.iter().map(|g| &g.data).collect::<Vec<_>>(),
            b.iter().map(|g| &g.data).collect::<Vec<_>>()
        );
        let bad = a.iter().filter(|g| !g.valid).count();
        assert!((30..=100).contains(&bad), "{bad} malformed of 2000");
        assert!(a
            .iter()
            .filter(|g| g.valid)
            .all(|g| serde_json::from_slice::<serde_json::Value>(&g.data).is_ok()));
    }
}
