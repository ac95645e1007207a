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
pub const DEFAULT_API_BASE: &str = "https://api.c-bot.pro";

/// Longest id accepted (public id, BOT id, job id). A UUID has 36 characters; BOT ids are short
/// user-chosen slugs. [I] the vendor documents no limit: 128 is a generous, bounded choice.
pub const MAX_ID_LEN: usize = 128;

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
    pub fn parse_field(raw: &str, field: &'static str) -> Result<Self, EndpointError> {
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
        let rest = split
            .path
            .strip_prefix('/')
            .ok_or(err(EndpointProblem::PathShape))?;
        let segments: Vec<&str> = rest.split('/').collect();
        for s in &segments {
            match *s {
                "" => return Err(err(EndpointProblem::EmptySegment)),
                "." | ".." => return Err(err(EndpointProblem::DotSegment)),
                _ => {}
            }
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
