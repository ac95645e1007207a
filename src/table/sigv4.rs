//! SigV4 for the lean DynamoDB calls (`table::lean`): a `POST` of a JSON body with a fixed set of
//! signed headers, so the canonical request is written directly instead of by a general
//! canonicaliser. The signing key (four HMACs of the date, region, service and secret) is cached
//! per day, region, service and secret: the SDK derives it again for every request, which is most
//! of its signing cost (docs/benchmarks.md, "Where the keyed execute's CPU goes"). The signature
//! itself is checked against the `aws-sigv4` crate's in the tests.

use std::sync::Mutex;
use std::time::SystemTime;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// What a request is signed with: the credentials' parts and the scope.
pub(crate) struct Signing<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
    pub(crate) session_token: Option<&'a str>,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
}

/// The request signed: a `POST` of `body` to `host` and `path` with these headers.
pub(crate) struct Post<'a> {
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    pub(crate) content_type: &'a str,
    /// The `x-amz-target` header.
    pub(crate) target: &'a str,
    pub(crate) body: &'a [u8],
}

/// The headers a signed request carries besides `content-type`, `host` and `x-amz-target`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Signed {
    pub(crate) x_amz_date: String,
    pub(crate) authorization: String,
}

/// The derived signing key of one day, region, service and secret.
struct CachedKey {
    date: String,
    region: String,
    service: String,
    secret: String,
    key: [u8; 32],
}

/// Signs requests, keeping the last derived key.
#[derive(Default)]
pub(crate) struct Signer {
    key: Mutex<Option<CachedKey>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cached key is a secret: never printed.
        f.write_str("Signer")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // An HMAC accepts a key of any length: this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// `YYYYMMDD'T'HHMMSS'Z'` of `time` (UTC).
fn amz_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Signer {
    /// The signing key for `date` (`YYYYMMDD`), derived once per day, scope and secret.
    fn key(&self, date: &str, s: &Signing<'_>) -> [u8; 32] {
        let mut cached = self
            .key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cached.as_ref()
            && c.date == date
            && c.region == s.region
            && c.service == s.service
            && c.secret == s.secret_access_key
        {
            return c.key;
        }
        let k_date = hmac(
            format!("AWS4{}", s.secret_access_key).as_bytes(),
            date.as_bytes(),
        );
        let k_region = hmac(&k_date, s.region.as_bytes());
        let k_service = hmac(&k_region, s.service.as_bytes());
        let key = hmac(&k_service, b"aws4_request");
        *cached = Some(CachedKey {
            date: date.to_owned(),
            region: s.region.to_owned(),
            service: s.service.to_owned(),
            secret: s.secret_access_key.to_owned(),
            key,
        });
        key
    }

    /// Signs `post` (a JSON body for `target`): the signed headers are
    /// `content-type`, `host`, `x-amz-date`, `x-amz-security-token` (with a session token) and
    /// `x-amz-target`.
    pub(crate) fn sign(&self, s: &Signing<'_>, time: SystemTime, post: &Post<'_>) -> Signed {
        let Post {
            host,
            path,
            content_type,
            target,
            body,
        } = post;
        let x_amz_date = amz_date(time);
        let date = &x_amz_date[..8];
        let (token_header, signed_headers) = match s.session_token {
            Some(token) => (
                format!("x-amz-security-token:{token}\n"),
                "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
            ),
            None => (String::new(), "content-type;host;x-amz-date;x-amz-target"),
        };
        let canonical = format!(
            "POST\n{path}\n\ncontent-type:{content_type}\nhost:{host}\nx-amz-date:{x_amz_date}\n\
             {token_header}x-amz-target:{target}\n\n{signed_headers}\n{}",
            hex(&Sha256::digest(body))
        );
        let scope = format!("{date}/{}/{}/aws4_request", s.region, s.service);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{x_amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let signature = hex(&hmac(&self.key(date, s), to_sign.as_bytes()));
        Signed {
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, \
                 Signature={signature}",
                s.access_key_id
            ),
            x_amz_date,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SigningSettings, sign as reference_sign,
    };
    use aws_sigv4::sign::v4;
    use std::time::Duration;

    fn reference(s: &Signing<'_>, time: SystemTime, host: &str, body: &[u8]) -> (String, String) {
        let identity = aws_sdk_dynamodb::config::Credentials::new(
            s.access_key_id,
            s.secret_access_key,
            s.session_token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(s.region)
            .name(s.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("host", host),
            ("x-amz-target", "DynamoDB_20120810.PutItem"),
        ];
        let request = SignableRequest::new(
            "POST",
            format!("https://{host}/"),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = reference_sign(request, &params).unwrap().into_parts();
        let get = |name: &str| {
            instructions
                .headers()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_owned())
                .unwrap()
        };
        (get("x-amz-date"), get("authorization"))
    }

    #[test]
    fn the_signature_is_the_aws_sigv4_crates() {
        let signer = Signer::default();
        let body = br#"{"TableName":"t","Item":{"record_key":{"S":"k"}}}"#;
        for (token, secs) in [
            (Some("session/token+="), 1_796_000_000),
            (None, 951_782_400), // 2000-02-29
            (Some("t"), 1_796_000_000 + 86_400 * 400),
        ] {
            let s = Signing {
                access_key_id: "AKIDEXAMPLE",
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                session_token: token,
                region: "ap-northeast-1",
                service: "dynamodb",
            };
            let time = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let host = "dynamodb.ap-northeast-1.amazonaws.com";
            let ours = signer.sign(
                &s,
                time,
                &Post {
                    host,
                    path: "/",
                    content_type: "application/x-amz-json-1.0",
                    target: "DynamoDB_20120810.PutItem",
                    body,
                },
            );
            let (date, authorization) = reference(&s, time, host, body);
            assert_eq!(ours.x_amz_date, date);
            assert_eq!(ours.authorization, authorization);
        }
    }

    #[test]
    fn the_key_is_derived_again_for_another_day_or_secret() {
        let signer = Signer::default();
        let s = Signing {
            access_key_id: "A",
            secret_access_key: "one",
            session_token: None,
            region: "us-east-1",
            service: "dynamodb",
        };
        let first = signer.key("20270101", &s);
        assert_eq!(signer.key("20270101", &s), first);
        assert_ne!(signer.key("20270102", &s), first);
        let other = Signing {
            secret_access_key: "two",
            ..s
        };
        assert_ne!(signer.key("20270102", &other), signer.key("20270102", &s));
    }

    #[test]
    fn amz_dates_are_utc_calendar_dates() {
        let at = |s| amz_date(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_700_000_000), "20231114T221320Z");
        assert_eq!(at(4_102_444_799), "20991231T235959Z");
    }
}
