//! Typed Cloud BOT endpoints: the API base (the only origin credentials are ever sent to), the
//! validated ids, and the two URLs users copy around — the *BOT execution endpoint*
//! (`{base}/{public_id}/bots/{bot_id}/jobs`) and the *job reference endpoint*
//! (`{base}/{public_id}/jobs/{job_id}`).
//!
//! Parsing is deliberately strict. A URL that arrives in an event decides where the access token
//! and secret key go, so anything a URL parser would quietly "fix" (percent-encoding, `.`/`..`
//! segments, backslashes, tabs, userinfo) is rejected on the raw string *before* the `url` crate
//! normalises it, and the parsed result is then checked again against the configured base.

use std::fmt;

use super::base::{ApiBase, EndpointError, EndpointProblem};

/// Longest id accepted (public id, BOT id, job id). A UUID has 36 characters; BOT ids are short
/// user-chosen slugs. [I] the vendor documents no limit: 128 is a generous, bounded choice.
const MAX_ID_LEN: usize = 128;

/// Validate an id: 1..=[`MAX_ID_LEN`] characters from RFC 3986's unreserved set
/// `[A-Za-z0-9._~-]`, and not `.` or `..`.
///
/// [I] The vendor documents no charset. BOT ids are user-chosen slugs (`get_items`), public ids
/// are path-safe names, job ids are UUIDs (hex digits and `-`). The unreserved set is the widest
/// one Cloud BOT could issue in a URL path without percent-encoding (the emulator issues all of
/// it): every such id stays one path segment exactly as written, no URL parser rewrites it, and
/// the dot segments `.` and `..` (the only ids of this set a parser would resolve) are refused,
/// so the endpoint's shape and host guard hold whatever the id.
fn check_id(raw: &str, field: &'static str) -> Result<(), EndpointError> {
    if raw.is_empty() {
        return Err(EndpointError::new(field, EndpointProblem::Empty));
    }
    if raw.len() > MAX_ID_LEN {
        return Err(EndpointError::new(field, EndpointProblem::TooLong));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'~'))
    {
        return Err(EndpointError::new(field, EndpointProblem::IdCharset));
    }
    if raw == "." || raw == ".." {
        return Err(EndpointError::new(field, EndpointProblem::DotSegment));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validate `raw` (see the module docs for the accepted charset); errors name `field`.
            pub fn parse(raw: &str, field: &'static str) -> Result<Self, EndpointError> {
                check_id(raw, field)?;
                Ok(Self(raw.to_owned()))
            }

            /// The id as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A contract's public id (the first path segment of every Cloud BOT URL).
    PublicId
);
id_type!(
    /// A BOT id (user-chosen slug, e.g. `get_items`).
    BotId
);
id_type!(
    /// A job id (UUID).
    JobId
);

/// A BOT execution endpoint: `{base}/{public_id}/bots/{bot_id}/jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotEndpoint {
    public_id: PublicId,
    bot_id: BotId,
    url: String,
}

impl BotEndpoint {
    /// Build the endpoint of `bot_id` in contract `public_id` on `base`.
    pub fn new(base: &ApiBase, public_id: PublicId, bot_id: BotId) -> Self {
        let url = base.join(&format!(
            "/{}/bots/{}/jobs",
            public_id.as_str(),
            bot_id.as_str()
        ));
        Self {
            public_id,
            bot_id,
            url,
        }
    }

    /// Parse a BOT execution endpoint URL; it must be on `base` and have exactly the shape
    /// `/{public_id}/bots/{bot_id}/jobs`. Errors name `field`.
    pub fn parse(base: &ApiBase, raw: &str, field: &'static str) -> Result<Self, EndpointError> {
        let segments = base.path_segments(raw, field)?;
        match segments.as_slice() {
            [public_id, "bots", bot_id, "jobs"] => Ok(Self::new(
                base,
                PublicId::parse(public_id, field)?,
                BotId::parse(bot_id, field)?,
            )),
            _ => Err(EndpointError::new(field, EndpointProblem::PathShape)),
        }
    }

    /// The full URL (the execute POST target).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The contract.
    pub fn public_id(&self) -> &PublicId {
        &self.public_id
    }

    /// The BOT.
    pub fn bot_id(&self) -> &BotId {
        &self.bot_id
    }
}

impl fmt::Display for BotEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// A job reference endpoint: `{base}/{public_id}/jobs/{job_id}` (refer with GET, suspend with
/// DELETE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEndpoint {
    public_id: PublicId,
    job_id: JobId,
    url: String,
}

impl JobEndpoint {
    /// Build the reference endpoint of `job_id` in contract `public_id` on `base`.
    pub fn new(base: &ApiBase, public_id: PublicId, job_id: JobId) -> Self {
        let url = base.join(&format!("/{}/jobs/{}", public_id.as_str(), job_id.as_str()));
        Self {
            public_id,
            job_id,
            url,
        }
    }

    /// Parse a job reference endpoint URL; it must be on `base` and have exactly the shape
    /// `/{public_id}/jobs/{job_id}`. Errors name `field`.
    pub fn parse(base: &ApiBase, raw: &str, field: &'static str) -> Result<Self, EndpointError> {
        let segments = base.path_segments(raw, field)?;
        match segments.as_slice() {
            [public_id, "jobs", job_id] => Ok(Self::new(
                base,
                PublicId::parse(public_id, field)?,
                JobId::parse(job_id, field)?,
            )),
            _ => Err(EndpointError::new(field, EndpointProblem::PathShape)),
        }
    }

    /// The full URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The contract.
    pub fn public_id(&self) -> &PublicId {
        &self.public_id
    }

    /// The job.
    pub fn job_id(&self) -> &JobId {
        &self.job_id
    }
}

impl fmt::Display for JobEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::EndpointProblem as P;
    use super::*;

    fn prod() -> ApiBase {
        ApiBase::default()
    }

    #[test]
    fn default_base_is_the_public_service() {
        assert_eq!(prod(), ApiBase::parse("https://api.c-bot.pro").unwrap());
        assert_eq!(prod().as_str(), "https://api.c-bot.pro");
        assert_eq!(ApiBase::parse("https://api.c-bot.pro/").unwrap(), prod());
        assert_eq!(ApiBase::parse("HTTPS://API.C-BOT.PRO").unwrap(), prod());
        assert_eq!(ApiBase::parse("https://api.c-bot.pro:443").unwrap(), prod());
    }

    #[test]
    fn base_table() {
        let ok = [
            ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
            ("http://localhost:9000/", "http://localhost:9000"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://127.10.0.1", "http://127.10.0.1"),
            (
                "https://cloudbot.internal.example:8443",
                "https://cloudbot.internal.example:8443",
            ),
        ];
        for (raw, origin) in ok {
            assert_eq!(ApiBase::parse(raw).unwrap().as_str(), origin, "{raw}");
        }
        let bad = [
            ("", P::Empty),
            ("api.c-bot.pro", P::NotAUrl),
            ("ftp://api.c-bot.pro", P::Scheme),
            ("http://api.c-bot.pro", P::InsecureScheme),
            ("http://10.0.0.1:8787", P::InsecureScheme),
            ("http://localhost.evil.example", P::InsecureScheme),
            ("https://user:pw@api.c-bot.pro", P::UserInfo),
            ("https://api.c-bot.pro/v1", P::BaseHasPath),
            ("https://api.c-bot.pro?x=1", P::Query),
            ("https://api.c-bot.pro#x", P::Fragment),
            ("https://api.c-bot.pro/%2e", P::PercentEncoding),
            (" https://api.c-bot.pro", P::InvalidCharacter),
            ("https://", P::NotAUrl),
        ];
        for (raw, problem) in bad {
            let err = ApiBase::parse_field(raw, "CLOUDBOT_API_BASE").unwrap_err();
            assert_eq!(err.reason, problem, "{raw:?}");
            assert_eq!(err.field, "CLOUDBOT_API_BASE");
        }
    }

    #[test]
    fn bot_endpoint_parses_the_documented_shape() {
        let e = BotEndpoint::parse(
            &prod(),
            "https://api.c-bot.pro/demo/bots/echo_bot/jobs",
            "bot_endpoint",
        )
        .unwrap();
        assert_eq!(e.public_id().as_str(), "demo");
        assert_eq!(e.bot_id().as_str(), "echo_bot");
        assert_eq!(e.url(), "https://api.c-bot.pro/demo/bots/echo_bot/jobs");
        // Same origin written differently: canonical URL out.
        let e = BotEndpoint::parse(
            &prod(),
            "HTTPS://Api.C-Bot.Pro:443/demo/bots/get-items_2/jobs",
            "bot_endpoint",
        )
        .unwrap();
        assert_eq!(e.url(), "https://api.c-bot.pro/demo/bots/get-items_2/jobs");
    }

    #[test]
    fn bot_endpoint_hostile_table() {
        let cases: &[(&str, P)] = &[
            ("", P::Empty),
            ("not a url", P::InvalidCharacter),
            ("/demo/bots/b/jobs", P::NotAUrl),
            ("api.c-bot.pro/demo/bots/b/jobs", P::NotAUrl),
            // userinfo
            (
                "https://api.c-bot.pro@evil.example/demo/bots/b/jobs",
                P::UserInfo,
            ),
            (
                "https://user:pass@api.c-bot.pro/demo/bots/b/jobs",
                P::UserInfo,
            ),
            (
                "https://api.c-bot.pro/demo/bots/b@evil.example/jobs",
                P::UserInfo,
            ),
            // other scheme / host / port
            ("http://api.c-bot.pro/demo/bots/b/jobs", P::Scheme),
            ("ftp://api.c-bot.pro/demo/bots/b/jobs", P::Scheme),
            ("javascript:alert(1)", P::NotAUrl),
            ("https://evil.example/demo/bots/b/jobs", P::Host),
            (
                "https://api.c-bot.pro.evil.example/demo/bots/b/jobs",
                P::Host,
            ),
            ("https://api.c-bot.pro./demo/bots/b/jobs", P::Host),
            ("https://xapi.c-bot.pro/demo/bots/b/jobs", P::Host),
            ("https://c-bot.pro/demo/bots/b/jobs", P::Host),
            ("https://api.c-bot.pro:8443/demo/bots/b/jobs", P::Port),
            ("https://api.c-bot.pro:80/demo/bots/b/jobs", P::Port),
            ("https://1.2.3.4/demo/bots/b/jobs", P::Host),
            // encodings and normalisation tricks
            (
                "https://api.c-bot.pro/demo/bots/b%2Fx/jobs",
                P::PercentEncoding,
            ),
            (
                "https://api.c-bot.pro/%64emo/bots/b/jobs",
                P::PercentEncoding,
            ),
            (
                "https://api%2ec-bot.pro/demo/bots/b/jobs",
                P::PercentEncoding,
            ),
            (
                "https://api.c-bot.pro/demo/bots/b/jobs/%2e%2e",
                P::PercentEncoding,
            ),
            (
                "https://api.c-bot.pro/other/../demo/bots/b/jobs",
                P::DotSegment,
            ),
            ("https://api.c-bot.pro/demo/bots/./b/jobs", P::DotSegment),
            ("https://api.c-bot.pro/demo/bots/b/jobs/..", P::DotSegment),
            (
                "https://api.c-bot.pro\\demo/bots/b/jobs",
                P::InvalidCharacter,
            ),
            (
                "https://api.c-bot.pro/demo/bots/b/jobs\t",
                P::InvalidCharacter,
            ),
            (
                "https://api.c-bot.pro/demo/bo\nts/b/jobs",
                P::InvalidCharacter,
            ),
            (
                " https://api.c-bot.pro/demo/bots/b/jobs",
                P::InvalidCharacter,
            ),
            (
                "https://api.c-bot.pro/demo/bots/bé/jobs",
                P::InvalidCharacter,
            ),
            (
                "https://аpi.c-bot.pro/demo/bots/b/jobs",
                P::InvalidCharacter,
            ),
            // empty segments, trailing junk, shape
            ("https://api.c-bot.pro//demo/bots/b/jobs", P::EmptySegment),
            ("https://api.c-bot.pro/demo//bots/b/jobs", P::EmptySegment),
            ("https://api.c-bot.pro/demo/bots/b/jobs/", P::EmptySegment),
            ("https://api.c-bot.pro/demo/bots//jobs", P::EmptySegment),
            ("https://api.c-bot.pro/demo/bots/b/jobs/extra", P::PathShape),
            ("https://api.c-bot.pro/demo/bots/b/jobsx", P::PathShape),
            ("https://api.c-bot.pro/demo/bots/b", P::PathShape),
            ("https://api.c-bot.pro/demo/bot/b/jobs", P::PathShape),
            ("https://api.c-bot.pro/demo/jobs/x", P::PathShape),
            ("https://api.c-bot.pro", P::PathShape),
            ("https://api.c-bot.pro/", P::EmptySegment),
            // query and fragment
            ("https://api.c-bot.pro/demo/bots/b/jobs?x=1", P::Query),
            ("https://api.c-bot.pro/demo/bots/b/jobs?", P::Query),
            ("https://api.c-bot.pro/demo/bots/b/jobs#frag", P::Fragment),
            // ids outside the charset
            ("https://api.c-bot.pro/demo/bots/b;x/jobs", P::IdCharset),
            ("https://api.c-bot.pro/demo/bots/b!x/jobs", P::IdCharset),
            ("https://api.c-bot.pro/demo/bots/b$x/jobs", P::IdCharset),
            ("https://api.c-bot.pro/demo/bots/../jobs", P::DotSegment),
            ("https://api.c-bot.pro/demo/bots/./jobs", P::DotSegment),
        ];
        for (raw, problem) in cases {
            let err = BotEndpoint::parse(&prod(), raw, "bot_endpoint").unwrap_err();
            assert_eq!(err.reason, *problem, "{raw:?}");
            assert_eq!(err.field, "bot_endpoint");
            assert!(err.to_string().starts_with("bot_endpoint "), "{err}");
        }
        let long_id = "a".repeat(MAX_ID_LEN + 1);
        let raw = format!("https://api.c-bot.pro/demo/bots/{long_id}/jobs");
        let err = BotEndpoint::parse(&prod(), &raw, "bot_endpoint").unwrap_err();
        assert_eq!(err.reason, P::TooLong);
        let huge = format!("https://api.c-bot.pro/{}", "a/".repeat(2000));
        let err = BotEndpoint::parse(&prod(), &huge, "bot_endpoint").unwrap_err();
        assert_eq!(err.reason, P::TooLong);
    }

    #[test]
    fn errors_never_echo_the_value() {
        let raw = "https://user:hunter2@api.c-bot.pro/demo/bots/b/jobs";
        let err = BotEndpoint::parse(&prod(), raw, "bot_endpoint").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[test]
    fn ids_with_dots_and_tildes_stay_one_segment_under_the_guarded_host() {
        let raw = "https://api.c-bot.pro/de.mo/bots/v1.2~beta/jobs";
        let e = BotEndpoint::parse(&prod(), raw, "bot_endpoint").unwrap();
        assert_eq!(e.url(), raw);
        assert_eq!(e.public_id().as_str(), "de.mo");
        let built = BotEndpoint::new(
            &prod(),
            PublicId::parse("de.mo", "p").unwrap(),
            BotId::parse("v1.2~beta", "b").unwrap(),
        );
        assert_eq!(built, e);
        let job = "https://api.c-bot.pro/de.mo/jobs/j.1~x";
        assert_eq!(JobEndpoint::parse(&prod(), job, "f").unwrap().url(), job);
        let three_dots = "https://api.c-bot.pro/demo/bots/.../jobs";
        assert_eq!(
            BotEndpoint::parse(&prod(), three_dots, "f").unwrap().url(),
            three_dots
        );
        // The host guard does not move: a dotted id cannot carry the URL elsewhere.
        for (raw, problem) in [
            (
                "https://api.c-bot.pro.evil.example/de.mo/bots/b/jobs",
                P::Host,
            ),
            ("https://evil.example/de.mo/bots/v1.2~beta/jobs", P::Host),
            ("https://api.c-bot.pro/demo/bots/~/../jobs", P::DotSegment),
        ] {
            assert_eq!(
                BotEndpoint::parse(&prod(), raw, "f").unwrap_err().reason,
                problem,
                "{raw}"
            );
        }
    }

    #[test]
    fn loopback_base_endpoints() {
        let base = ApiBase::parse("http://127.0.0.1:8787").unwrap();
        let e = BotEndpoint::parse(&base, "http://127.0.0.1:8787/demo/bots/b/jobs", "f").unwrap();
        assert_eq!(e.url(), "http://127.0.0.1:8787/demo/bots/b/jobs");
        for (raw, problem) in [
            ("https://127.0.0.1:8787/demo/bots/b/jobs", P::Scheme),
            ("http://127.0.0.1:8788/demo/bots/b/jobs", P::Port),
            ("http://localhost:8787/demo/bots/b/jobs", P::Host),
            ("http://127.0.0.2:8787/demo/bots/b/jobs", P::Host),
            ("https://api.c-bot.pro/demo/bots/b/jobs", P::Scheme),
        ] {
            assert_eq!(
                BotEndpoint::parse(&base, raw, "f").unwrap_err().reason,
                problem,
                "{raw}"
            );
        }
    }

    #[test]
    fn job_endpoint_parses_and_rejects() {
        let uuid = "1b7c0f6e-93a4-4c1e-9f7b-0123456789ab";
        let raw = format!("https://api.c-bot.pro/demo/jobs/{uuid}");
        let e = JobEndpoint::parse(&prod(), &raw, "job_reference_endpoint").unwrap();
        assert_eq!(e.job_id().as_str(), uuid);
        assert_eq!(e.public_id().as_str(), "demo");
        assert_eq!(e.url(), raw);
        let built = JobEndpoint::new(
            &prod(),
            PublicId::parse("demo", "public_id").unwrap(),
            JobId::parse(uuid, "job_id").unwrap(),
        );
        assert_eq!(built, e);
        for (raw, problem) in [
            ("https://api.c-bot.pro/demo/jobs", P::PathShape),
            ("https://api.c-bot.pro/demo/jobs/x/y", P::PathShape),
            ("https://api.c-bot.pro/demo/bots/b/jobs", P::PathShape),
            ("https://api.c-bot.pro/demo/jobs/..", P::DotSegment),
            ("https://api.c-bot.pro/demo/jobs/%31", P::PercentEncoding),
            (
                "https://api.c-bot.pro@evil.example/demo/jobs/x",
                P::UserInfo,
            ),
            ("https://api.c-bot.pro.evil.example/demo/jobs/x", P::Host),
            ("https://api.c-bot.pro/demo/jobs/x?y", P::Query),
            ("https://api.c-bot.pro/demo/jobs/x#y", P::Fragment),
            ("https://api.c-bot.pro/demo/jobs/x/", P::EmptySegment),
        ] {
            let err = JobEndpoint::parse(&prod(), raw, "job_reference_endpoint").unwrap_err();
            assert_eq!(err.reason, problem, "{raw}");
            assert_eq!(err.field, "job_reference_endpoint");
        }
    }

    #[test]
    fn id_table() {
        for ok in [
            "demo",
            "get_items",
            "A-z_09",
            "1b7c0f6e-93a4-4c1e-9f7b-0123456789ab",
            "v1.2~beta",
            "...",
            ".hidden",
            "~",
        ] {
            assert!(BotId::parse(ok, "bot_id").is_ok(), "{ok}");
        }
        for (bad, problem) in [
            ("", P::Empty),
            (".", P::DotSegment),
            ("..", P::DotSegment),
            ("a:b", P::IdCharset),
            ("a@b", P::IdCharset),
            ("a/b", P::IdCharset),
            ("a b", P::IdCharset),
            ("a%2f", P::IdCharset),
            ("ä", P::IdCharset),
        ] {
            let err = PublicId::parse(bad, "public_id").unwrap_err();
            assert_eq!(err.reason, problem, "{bad:?}");
            assert_eq!(err.field, "public_id");
        }
        assert_eq!(
            JobId::parse(&"f".repeat(MAX_ID_LEN + 1), "job_id")
                .unwrap_err()
                .reason,
            P::TooLong
        );
    }
}
