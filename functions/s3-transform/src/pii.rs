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
}
