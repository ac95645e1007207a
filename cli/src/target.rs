//! Endpoint arguments: BOT execution endpoints, and job references as a full job reference
//! endpoint or as `PUBLIC_ID/JOB_ID`. Parsed by the function's own strict parser against the
//! API base; when an endpoint is on another origin the message says which origin each side is
//! (and that the CLI is on the local emulator, when that is why).

use cloudbot_trigger::cloudbot::{
    ApiBase, BotEndpoint, EndpointError, EndpointProblem, JobEndpoint, JobId, PublicId,
};

use crate::error::CliError;

/// The emulator's default address (`cloudbot-emulator` without `--port`): the API base when
/// neither `--api-base` nor `CLOUDBOT_API_BASE` is given.
pub const LOCAL_API_BASE: &str = "http://127.0.0.1:8787";

/// The API base the arguments are checked against, and whether it is the default one.
pub struct Origin<'a> {
    /// The base.
    pub base: &'a ApiBase,
    /// True when neither `--api-base` nor `CLOUDBOT_API_BASE` was given.
    pub is_default: bool,
}

impl Origin<'_> {
    /// A BOT execution endpoint argument.
    pub fn bot(&self, raw: &str, field: &'static str) -> Result<BotEndpoint, CliError> {
        BotEndpoint::parse(self.base, raw, field).map_err(|e| self.refused(raw, e))
    }

    /// A job argument: a job reference endpoint, or `PUBLIC_ID/JOB_ID` on the API base.
    pub fn job(&self, raw: &str, field: &'static str) -> Result<JobEndpoint, CliError> {
        if !raw.contains("://")
            && let Some((public_id, job_id)) = raw.split_once('/')
        {
            let ids = PublicId::parse(public_id, field)
                .and_then(|p| JobId::parse(job_id, field).map(|j| (p, j)));
            return match ids {
                Ok((p, j)) => Ok(JobEndpoint::new(self.base, p, j)),
                Err(e) => Err(CliError::Usage(format!(
                    "{e} (expected a job reference endpoint or PUBLIC_ID/JOB_ID)"
                ))),
            };
        }
        JobEndpoint::parse(self.base, raw, field).map_err(|e| self.refused(raw, e))
    }

    fn refused(&self, raw: &str, e: EndpointError) -> CliError {
        let base = self.base.as_str();
        let other_origin = matches!(
            e.reason,
            EndpointProblem::Scheme | EndpointProblem::Host | EndpointProblem::Port
        );
        match origin_of(raw) {
            Some(origin) if other_origin && self.is_default => CliError::Usage(format!(
                "{field} is on {origin}, but the CLI is pointed at the local emulator ({LOCAL_API_BASE}, \
                 used when no API base is set); for that service set CLOUDBOT_API_BASE={origin} \
                 (or pass --api-base {origin})",
                field = e.field
            )),
            Some(origin) if other_origin => CliError::Usage(format!(
                "{field} is on {origin}, but the API base is {base} (--api-base / \
                 CLOUDBOT_API_BASE); credentials go to the API base only, so endpoints must be on it",
                field = e.field
            )),
            _ => CliError::Usage(format!("{e} (API base: {base})")),
        }
    }
}

/// `scheme://host[:port]` of `raw` when it is a URL without userinfo (so nothing pasted by
/// mistake before the host is repeated).
fn origin_of(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    if !url.username().is_empty() || url.password().is_some() || url.host().is_none() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(base: &ApiBase, is_default: bool) -> Origin<'_> {
        Origin { base, is_default }
    }

    #[test]
    fn a_real_endpoint_against_the_default_emulator_says_so() {
        let base = ApiBase::parse(LOCAL_API_BASE).unwrap();
        let err = origin(&base, true)
            .bot("https://api.c-bot.pro/demo/bots/b/jobs", "BOT_ENDPOINT")
            .unwrap_err()
            .to_string();
        assert!(err.contains("local emulator"), "{err}");
        assert!(
            err.contains("CLOUDBOT_API_BASE=https://api.c-bot.pro"),
            "{err}"
        );
        let err = origin(&base, false)
            .bot("https://api.c-bot.pro/demo/bots/b/jobs", "BOT_ENDPOINT")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the API base is http://127.0.0.1:8787"),
            "{err}"
        );
        // Userinfo is never repeated.
        let err = origin(&base, true)
            .bot(
                "https://user:pw@api.c-bot.pro/demo/bots/b/jobs",
                "BOT_ENDPOINT",
            )
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pw"), "{err}");
    }

    #[test]
    fn a_job_is_a_url_or_public_id_slash_job_id() {
        let base = ApiBase::parse(LOCAL_API_BASE).unwrap();
        let o = origin(&base, true);
        assert_eq!(
            o.job("demo/0b6e-1", "JOB").unwrap().url(),
            "http://127.0.0.1:8787/demo/jobs/0b6e-1"
        );
        assert_eq!(
            o.job("http://127.0.0.1:8787/demo/jobs/x", "JOB")
                .unwrap()
                .url(),
            "http://127.0.0.1:8787/demo/jobs/x"
        );
        // Ids may hold `.` and `~` (docs/client.md, "Endpoint rules"), never `;` or a dot segment.
        assert_eq!(
            o.job("de.mo/j~1", "JOB").unwrap().url(),
            "http://127.0.0.1:8787/de.mo/jobs/j~1"
        );
        for bad in ["demo/a/b", "de;mo/x", "demo/..", "/x", "demo/"] {
            assert!(o.job(bad, "JOB").is_err(), "{bad}");
        }
    }
}
