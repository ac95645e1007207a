//! Cloud BOT access-token credentials: the access token and its secret key.
//!
//! The type is built so that it cannot leak by accident: `Debug` prints `***`, there is no
//! `Display` or `Serialize`, and the raw values leave it only as sensitive header values, built
//! in exactly one place (where the request headers are set).

use std::fmt;

use reqwest::header::HeaderValue;

/// An access token + secret key pair (sent as the `access-token` and `secret-key` headers).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_token: String,
    secret_key: String,
}

impl Credentials {
    /// Wrap an access token and its secret key.
    pub fn new(access_token: String, secret_key: String) -> Self {
        Self {
            access_token,
            secret_key,
        }
    }

    /// The two header values, marked sensitive so that no HTTP layer prints them.
    /// `None` when a value cannot be sent as a header.
    pub(crate) fn header_values(&self) -> Option<(HeaderValue, HeaderValue)> {
        if check_value(&self.access_token).is_err() || check_value(&self.secret_key).is_err() {
            return None;
        }
        let mut token = HeaderValue::from_str(&self.access_token).ok()?;
        let mut secret = HeaderValue::from_str(&self.secret_key).ok()?;
        token.set_sensitive(true);
        secret.set_sensitive(true);
        Some((token, secret))
    }

    /// HMAC-SHA256 of `message` under the secret key: a tag only a holder of this secret can
    /// compute (the BOT-done webhook's path token, `crate::bot_done`). The key never leaves.
    pub fn keyed_digest(&self, message: &[u8]) -> Option<[u8; 32]> {
        use hmac::Mac;
        Some(self.mac(message)?.finalize().into_bytes().into())
    }

    /// Whether `tag` is [`Self::keyed_digest`] of `message`, compared in constant time.
    pub fn keyed_digest_matches(&self, message: &[u8], tag: &[u8]) -> bool {
        use hmac::Mac;
        self.mac(message)
            .is_some_and(|mac| mac.verify_slice(tag).is_ok())
    }

    /// HMAC accepts a key of any length, so `None` never happens in practice.
    fn mac(&self, message: &[u8]) -> Option<hmac::Hmac<sha2::Sha256>> {
        use hmac::{KeyInit, Mac};
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(self.secret_key.as_bytes()).ok()?;
        mac.update(message);
        Some(mac)
    }

    /// Replace any occurrence of either value in `text` by `***` (used on server-supplied
    /// messages kept in errors: a server that echoes a header must not make us leak it).
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in [&self.access_token, &self.secret_key] {
            if !secret.is_empty() && out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a credential value cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    /// Nothing in it.
    #[error("is empty")]
    Empty,
    /// A character an HTTP header value cannot carry.
    #[error("contains characters not allowed in HTTP headers (visible ASCII only)")]
    NotHeaderSafe,
}

/// The shape rule for a credential value, defined once: non-empty, visible ASCII only (what an
/// HTTP header value can carry). The secret decoder applies it to name the key at fault; the
/// client applies it again before sending.
pub fn check_value(value: &str) -> Result<(), ValueProblem> {
    if value.is_empty() {
        Err(ValueProblem::Empty)
    } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
        Err(ValueProblem::NotHeaderSafe)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let c = Credentials::new("tok-123".into(), "sec-456".into());
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("tok-123"));
        assert!(!shown.contains("sec-456"));
        assert!(shown.contains("***"));
    }

    #[test]
    fn header_values_are_sensitive() {
        let c = Credentials::new("tok".into(), "sec".into());
        let (t, s) = c.header_values().unwrap();
        assert!(t.is_sensitive() && s.is_sensitive());
        assert_eq!(t.to_str().unwrap(), "tok");
        assert!(!format!("{t:?}{s:?}").contains("sec"));
    }

    #[test]
    fn malformed_values_are_refused() {
        for (t, s) in [
            ("", "x"),
            ("x", ""),
            ("a b", "x"),
            ("x", "line\nbreak"),
            ("é", "x"),
        ] {
            let c = Credentials::new(t.into(), s.into());
            assert!(check_value(t).is_err() || check_value(s).is_err());
            assert!(c.header_values().is_none());
        }
    }

    #[test]
    fn scrub_removes_both_values() {
        let c = Credentials::new("tok".into(), "sec".into());
        assert_eq!(c.scrub("bad tok and sec!"), "bad *** and ***!");
    }
}
