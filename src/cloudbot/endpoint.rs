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
use std::net::IpAddr;

use url::{Host, Url};

/// The default API base: the public Cloud BOT service.
const DEFAULT_API_BASE: &str = "https://api.c-bot.pro";

/// Longest id accepted (public id, BOT id, job id). A UUID has 36 characters; BOT ids are short
/// user-chosen slugs. [I] the vendor documents no limit: 128 is a generous, bounded choice.
const MAX_ID_LEN: usize = 128;

/// Longest endpoint URL accepted, before any parsing work is done.
const MAX_URL_LEN: usize = 2048;

/// Why a URL or id was rejected. The offending value itself is never included (it may be
/// attacker-controlled or carry a pasted secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointProblem {
    /// Empty string.
    #[error("is empty")]
    Empty,
    /// Longer than the accepted maximum.
    #[error("is too long")]
    TooLong,
    /// Not an absolute http(s) URL.
    #[error("is not an absolute https URL")]
    NotAUrl,
    /// Whitespace, control characters or a backslash somewhere in the string.
    #[error("contains whitespace, control characters or a backslash")]
    InvalidCharacter,
    /// `user:password@` before the host.
    #[error("must not contain userinfo (`user@host`)")]
    UserInfo,
    /// Scheme differs from the API base (or is neither http nor https).
    #[error("has a scheme other than the API base's")]
    Scheme,
    /// `http` used for a host that is not loopback.
    #[error("uses http, which is only allowed for loopback hosts")]
    InsecureScheme,
    /// Host differs from the API base.
    #[error("points to a host other than the configured API base")]
    Host,
    /// Port differs from the API base.
    #[error("points to a port other than the configured API base's")]
    Port,
    /// `?query` present.
    #[error("must not have a query string")]
    Query,
    /// `#fragment` present.
    #[error("must not have a fragment")]
    Fragment,
    /// `%xx` anywhere in the string.
    #[error("must not contain percent-encoding")]
    PercentEncoding,
    /// A `.` or `..` path segment.
    #[error("must not contain `.` or `..` path segments")]
    DotSegment,
    /// `//` or a trailing `/`.
    #[error("must not contain empty path segments")]
    EmptySegment,
    /// The path is not the expected shape (wrong literal segments, missing or extra segments).
    #[error("does not have the expected path shape")]
    PathShape,
    /// An id with a character outside the accepted set.
    #[error("contains characters outside [A-Za-z0-9_-]")]
    IdCharset,
    /// The API base has a path.
    #[error("must be an origin only (scheme, host, optional port) without a path")]
    BaseHasPath,
}

/// A rejected endpoint URL or id; `field` names the request field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct EndpointError {
    /// The request field (or header) the value came from, e.g. `bot_endpoint`.
    pub field: &'static str,
    /// What was wrong with it.
    pub reason: EndpointProblem,
}

impl EndpointError {
    fn new(field: &'static str, reason: EndpointProblem) -> Self {
        Self { field, reason }
    }
}

/// Scheme of the API base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Https,
    Http,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// The configured API origin (scheme + host + port). Credentials are only ever sent here.
///
/// `https` always; `http` only when the host is loopback (`localhost`, `127.0.0.0/8`, `[::1]`),
/// for local runs against the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase {
    scheme: Scheme,
    /// Lower-case host as `url` serialises it (`[::1]` for IPv6).
    host: String,
    /// Effective port (the scheme default when none was written).
    port: u16,
    /// Canonical origin without a trailing slash, e.g. `https://api.c-bot.pro`.
    origin: String,
}

impl Default for ApiBase {
    fn default() -> Self {
        Self {
            scheme: Scheme::Https,
            host: "api.c-bot.pro".to_owned(),
            port: 443,
            origin: DEFAULT_API_BASE.to_owned(),
        }
    }
}

impl ApiBase {
    /// Parse an origin such as `https://api.c-bot.pro` or `http://127.0.0.1:8787` (one trailing
    /// `/` tolerated). Errors name the field `api_base`.
    pub fn parse(raw: &str) -> Result<Self, EndpointError> {
        Self::parse_field(raw, "api_base")
    }

    /// Like [`ApiBase::parse`], naming `field` in errors (e.g. the env var it came from).
    fn parse_field(raw: &str, field: &'static str) -> Result<Self, EndpointError> {
        let err = |p| EndpointError::new(field, p);
        let split = split_raw(raw).map_err(err)?;
        if !(split.path.is_empty() || split.path == "/") {
            return Err(err(EndpointProblem::BaseHasPath));
        }
        let url = Url::parse(raw).map_err(|_| err(EndpointProblem::NotAUrl))?;
        check_parsed_common(&url).map_err(err)?;
        let scheme = match url.scheme() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            _ => return Err(err(EndpointProblem::Scheme)),
        };
        let host = url.host().ok_or(err(EndpointProblem::NotAUrl))?;
        if scheme == Scheme::Http && !is_loopback(&host) {
            return Err(err(EndpointProblem::InsecureScheme));
        }
        let host = host.to_string();
        let port = url
            .port_or_known_default()
            .ok_or(err(EndpointProblem::NotAUrl))?;
        let origin = match url.port() {
            Some(p) => format!("{}://{}:{}", scheme.as_str(), host, p),
            None => format!("{}://{}", scheme.as_str(), host),
        };
        Ok(Self {
            scheme,
            host,
            port,
            origin,
        })
    }

    /// The canonical origin without a trailing slash, e.g. `https://api.c-bot.pro`.
    pub fn as_str(&self) -> &str {
        &self.origin
    }

    /// The host to connect to, without the brackets of an IPv6 literal.
    pub(crate) fn connect_host(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }

    /// The effective port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// True when this base uses plain http (loopback only).
    pub fn is_http(&self) -> bool {
        self.scheme == Scheme::Http
    }

    /// `{origin}{path}`; `path` must start with `/` and consist of validated pieces.
    pub(crate) fn join(&self, path: &str) -> String {
        format!("{}{}", self.origin, path)
    }

    /// Parse `raw` as a URL on this base and return its path segments (without the leading
    /// empty one). Every hostile shape is rejected here; the caller only checks the literal
    /// segments and the ids.
    fn path_segments<'r>(
        &self,
        raw: &'r str,
        field: &'static str,
    ) -> Result<Vec<&'r str>, EndpointError> {
        let err = |p| EndpointError::new(field, p);
        let split = split_raw(raw).map_err(err)?;
        // Segment checks on the raw path, before `url` resolves `.`/`..` and merges nothing.
        let segments: Vec<&str> = match split.path.strip_prefix('/') {
            Some(rest) => rest.split('/').collect(),
            None => return Err(err(EndpointProblem::PathShape)),
        };
        for s in &segments {
            match *s {
                "" => return Err(err(EndpointProblem::EmptySegment)),
                "." | ".." => return Err(err(EndpointProblem::DotSegment)),
                _ => {}
            }
        }
        let url = Url::parse(raw).map_err(|_| err(EndpointProblem::NotAUrl))?;
        check_parsed_common(&url).map_err(err)?;
        if url.scheme() != self.scheme.as_str() {
            return Err(err(EndpointProblem::Scheme));
        }
        let host = url.host().ok_or(err(EndpointProblem::NotAUrl))?;
        if host.to_string() != self.host {
            return Err(err(EndpointProblem::Host));
        }
        if url.port_or_known_default() != Some(self.port) {
            return Err(err(EndpointProblem::Port));
        }
        // The raw path and the parsed path must agree: anything the parser rewrote is a trick.
        if url.path() != split.path {
            return Err(err(EndpointProblem::PathShape));
        }
        Ok(segments)
    }
}

impl fmt::Display for ApiBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)
    }
}

/// The pieces of a raw URL string, split without any normalisation.
struct RawSplit<'r> {
    path: &'r str,
}

/// Checks on the raw string that must happen before `url` normalises it away.
fn split_raw(raw: &str) -> Result<RawSplit<'_>, EndpointProblem> {
    if raw.is_empty() {
        return Err(EndpointProblem::Empty);
    }
    if raw.len() > MAX_URL_LEN {
        return Err(EndpointProblem::TooLong);
    }
    // `url` strips leading/trailing C0 and space and removes tabs/newlines anywhere; it also
    // treats `\` as `/` for http(s). None of that is acceptable in an endpoint.
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(EndpointProblem::InvalidCharacter);
    }
    if !raw.is_ascii() {
        // Internationalised hosts or paths are converted by the parser; ids are ASCII anyway.
        return Err(EndpointProblem::InvalidCharacter);
    }
    let (scheme, rest) = raw.split_once("://").ok_or(EndpointProblem::NotAUrl)?;
    if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) {
        return Err(EndpointProblem::Scheme);
    }
    if rest.contains('#') {
        return Err(EndpointProblem::Fragment);
    }
    if rest.contains('?') {
        return Err(EndpointProblem::Query);
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(EndpointProblem::UserInfo);
    }
    if authority.is_empty() {
        return Err(EndpointProblem::NotAUrl);
    }
    if raw.contains('%') {
        return Err(EndpointProblem::PercentEncoding);
    }
    if path.contains('@') {
        // Never legitimate in our path shapes; refuse before anything can read it as userinfo.
        return Err(EndpointProblem::UserInfo);
    }
    Ok(RawSplit { path })
}

/// Checks on the parsed URL shared by the base and the endpoints.
fn check_parsed_common(url: &Url) -> Result<(), EndpointProblem> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointProblem::UserInfo);
    }
    if url.query().is_some() {
        return Err(EndpointProblem::Query);
    }
    if url.fragment().is_some() {
        return Err(EndpointProblem::Fragment);
    }
    if url.cannot_be_a_base() {
        return Err(EndpointProblem::NotAUrl);
    }
    Ok(())
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Validate an id: 1..=[`MAX_ID_LEN`] characters from `[A-Za-z0-9_-]`.
///
/// [I] The vendor documents no charset. BOT ids are user-chosen slugs (`get_items`), public ids
/// are path-safe names, job ids are UUIDs (hex digits and `-`). This conservative set keeps every
/// id safe to place in a URL path without encoding.
fn check_id(raw: &str, field: &'static str) -> Result<(), EndpointError> {
    if raw.is_empty() {
        return Err(EndpointError::new(field, EndpointProblem::Empty));
    }
    if raw.len() > MAX_ID_LEN {
        return Err(EndpointError::new(field, EndpointProblem::TooLong));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(EndpointError::new(field, EndpointProblem::IdCharset));
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
            ("https://api.c-bot.pro/de.mo/bots/b/jobs", P::IdCharset),
            ("https://api.c-bot.pro/demo/bots/b;x/jobs", P::IdCharset),
            ("https://api.c-bot.pro/demo/bots/b~x/jobs", P::IdCharset),
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
        ] {
            assert!(BotId::parse(ok, "bot_id").is_ok(), "{ok}");
        }
        for (bad, problem) in [
            ("", P::Empty),
            (".", P::IdCharset),
            ("..", P::IdCharset),
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
