//! PII rules applied before anything reaches the curated zone or PostgreSQL.
//!
//! `hash` is HMAC-SHA256 with a key from the environment or Secrets Manager (hex, so joins on
//! the hashed value still work); `redact` replaces the value; `mask_email` keeps only the
//! domain; `truncate_ip` keeps an IPv4 /24 or an IPv6 /48; `drop` removes the column (handled
//! by the column plan, not here).

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sluice_core::config::PiiRule;
use sluice_core::object::{self, Doc};

/// The value written in place of a redacted one.
pub const REDACTED: &str = "[REDACTED]";

/// The HMAC key of the `hash` rule.
#[derive(Clone)]
pub struct HashKey {
    /// The keyed HMAC state (key padding already absorbed), cloned for each value.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// A key from secret bytes (at least 16).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<HashKey> {
        let b = bytes.into();
        if b.len() < 16 {
            return None;
        }
        // HMAC accepts keys of any length; this cannot fail for Hmac<Sha256>.
        Hmac::<Sha256>::new_from_slice(&b)
            .ok()
            .map(|mac| HashKey { mac })
    }

    /// HMAC-SHA256 of `value`, lowercase hex.
    pub fn hash(&self, value: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(64);
        for b in out {
            hex.push(HEX[usize::from(b >> 4)] as char);
            hex.push(HEX[usize::from(b & 15)] as char);
        }
        hex
    }
}

/// Applies a string rule (`hash`, `redact`, `mask_email`, `truncate_ip`) to a text value.
/// `drop` never reaches here; it is treated like `redact` if it does.
pub fn apply(rule: PiiRule, value: &str, key: Option<&HashKey>) -> String {
    match rule {
        PiiRule::Hash => match key {
            Some(k) => k.hash(value),
            None => REDACTED.to_string(),
        },
        PiiRule::Redact | PiiRule::Drop => REDACTED.to_string(),
        PiiRule::MaskEmail => mask_email(value),
        PiiRule::TruncateIp => truncate_ip(value),
    }
}

/// `text` (a `json` value's compact text) with the value at `path` replaced by `rule` applied
/// to it, in every member of that name along the way (duplicate keys too, so no copy leaks);
/// all other bytes are kept, so numbers elsewhere stay exact. A string value is masked as its
/// text, anything else as its JSON text; the result is a JSON string. A path that is not
/// there (or crosses a non-object) leaves the text unchanged.
pub fn mask_json(text: &str, path: &[String], rule: PiiRule, key: Option<&HashKey>) -> String {
    let mut spans = Vec::new();
    json_spans(text, text, path, &mut spans);
    spans.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    let mut out = text.to_string();
    for (start, len) in spans {
        let raw = &text[start..start + len];
        let plain = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_string());
        let masked = apply(rule, &plain, key);
        let quoted = serde_json::to_string(&masked).unwrap_or_else(|_| "null".to_string());
        out.replace_range(start..start + len, &quoted);
    }
    out
}

/// Byte ranges in `base` of the values at `path` below the object `text` (a slice of `base`).
fn json_spans(base: &str, text: &str, path: &[String], out: &mut Vec<(usize, usize)>) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Ok(Doc::Object(obj)) = object::parse(text) else {
        return;
    };
    for v in obj.get_all(first) {
        let inner = v.get();
        if rest.is_empty() {
            // `inner` borrows from `base`: its offset is the distance between the two.
            let start = inner.as_ptr() as usize - base.as_ptr() as usize;
            out.push((start, inner.len()));
        } else {
            json_spans(base, inner, rest, out);
        }
    }
}

/// `alice@example.com` → `***@example.com`; anything without a single `@` is redacted.
pub fn mask_email(v: &str) -> String {
    match v.trim().rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            format!("***@{}", domain.to_ascii_lowercase())
        }
        _ => REDACTED.to_string(),
    }
}

/// `203.0.113.42` → `203.0.113.0`; `2001:db8:85a3::8a2e:370:7334` → `2001:db8:85a3::`;
/// anything that is not an IP address is redacted.
pub fn truncate_ip(v: &str) -> String {
    match v.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            let o = a.octets();
            format!("{}.{}.{}.0", o[0], o[1], o[2])
        }
        Ok(IpAddr::V6(a)) => {
            let s = a.segments();
            std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
        }
        Err(_) => REDACTED.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(mask_email("Alice.B@Example.COM"), "***@example.com");
        assert_eq!(mask_email("no-at-sign"), REDACTED);
        assert_eq!(mask_email("@x.com"), REDACTED);
        assert_eq!(truncate_ip("203.0.113.42"), "203.0.113.0");
        assert_eq!(
            truncate_ip("2001:db8:85a3::8a2e:370:7334"),
            "2001:db8:85a3::"
        );
        assert_eq!(truncate_ip("not an ip"), REDACTED);
        assert_eq!(apply(PiiRule::Redact, "x", None), REDACTED);
    }

    #[test]
    fn hash_is_keyed_and_deterministic() {
        let k = HashKey::new(b"0123456789abcdef".to_vec()).unwrap();
        let k2 = HashKey::new(b"fedcba9876543210".to_vec()).unwrap();
        assert_eq!(k.hash("+64 21 555"), k.hash("+64 21 555"));
        assert_ne!(k.hash("+64 21 555"), k2.hash("+64 21 555"));
        assert_eq!(k.hash("a").len(), 64);
        assert!(HashKey::new(b"short".to_vec()).is_none());
        assert!(!format!("{k:?}").contains("0123"));
        // RFC 4231 test case 1, through HashKey itself.
        assert_eq!(
            HashKey::new(vec![0x0b; 20]).unwrap().hash("Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // RFC 4231 test case 2.
        let jefe = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        let mut m = jefe;
        m.update(b"what do ya want for nothing?");
        let hex: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn json_paths_are_masked_in_place_in_every_copy() {
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        let text = r#"{"card":{"number":"4242424242424242","exp":"12/30"},"n":123456789012345678901234567890,"card":{"number":5555,"x":[1]}}"#;
        let out = mask_json(text, &path("card.number"), PiiRule::Redact, None);
        assert_eq!(
            out,
            r#"{"card":{"number":"[REDACTED]","exp":"12/30"},"n":123456789012345678901234567890,"card":{"number":"[REDACTED]","x":[1]}}"#
        );
        let key = HashKey::new(b"0123456789abcdef".to_vec()).expect("key");
        let hashed = mask_json(text, &path("card.number"), PiiRule::Hash, Some(&key));
        assert!(
            !hashed.contains("4242") && !hashed.contains("5555"),
            "{hashed}"
        );
        assert!(hashed.contains(&format!("\"{}\"", key.hash("4242424242424242"))));
        assert!(hashed.contains(&format!("\"{}\"", key.hash("5555"))));
        // Not there, or through a non-object: unchanged.
        for p in ["card.cvv", "n.x", "card.x.0", "nope"] {
            assert_eq!(
                mask_json(text, &path(p), PiiRule::Redact, None),
                text,
                "{p}"
            );
        }
        let masked = mask_json(
            r#"{"email":"ann@example.com"}"#,
            &path("email"),
            PiiRule::MaskEmail,
            None,
        );
        assert_eq!(masked, r#"{"email":"***@example.com"}"#);
    }
}
