//! The API base (the only origin credentials are ever sent to), the strict checks every URL
//! that arrives in an event goes through before the `url` crate may normalise it, and the
//! errors of both; the endpoints built on the base are in `endpoint.rs`.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// The default API base: the public Cloud BOT service.
const DEFAULT_API_BASE: &str = "https://api.c-bot.pro";

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
    #[error("contains characters outside [A-Za-z0-9._~-]")]
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
    pub(super) fn new(field: &'static str, reason: EndpointProblem) -> Self {
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
    pub(super) fn parse_field(raw: &str, field: &'static str) -> Result<Self, EndpointError> {
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
    pub(super) fn path_segments<'r>(
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
