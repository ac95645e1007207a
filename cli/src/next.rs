//! The exact commands an operator runs next (follow a job, find a job that may have started,
//! cancel), ready to paste: the same global options that were given on the command line, real
//! endpoints, no placeholders.

use cloudbot_trigger::cloudbot::{BotEndpoint, JobEndpoint};

/// Builds follow-up commands with this invocation's explicit global options.
#[derive(Debug, Clone)]
pub struct Next {
    prefix: String,
}

impl Next {
    /// `cloudbot` followed by `options` (flag, value), each given on the command line (options
    /// that came from the environment are not repeated: the next command sees them too).
    pub fn new(options: &[(&str, &str)]) -> Next {
        let mut prefix = String::from("cloudbot");
        for (flag, value) in options {
            prefix.push(' ');
            prefix.push_str(flag);
            prefix.push(' ');
            prefix.push_str(&quote(value));
        }
        Next { prefix }
    }

    /// Follow the job to its end.
    pub fn follow_job(&self, job: &JobEndpoint) -> String {
        format!("{} job {} --follow", self.prefix, job.url())
    }

    /// Read the job once.
    pub fn show_job(&self, job: &JobEndpoint) -> String {
        format!("{} job {}", self.prefix, job.url())
    }

    /// Cancel the job (DELETE is idempotent: safe to repeat).
    pub fn cancel_job(&self, job: &JobEndpoint) -> String {
        format!("{} cancel {}", self.prefix, job.url())
    }

    /// List the BOT's jobs started within `since` (e.g. `7m`).
    pub fn find_jobs(&self, bot: &BotEndpoint, since: &str) -> String {
        format!("{} jobs {} --since {since}", self.prefix, bot.url())
    }
}

/// `value` as one shell word: unchanged when it holds only characters no POSIX shell treats
/// specially, else in single quotes.
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@+,%".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudbot_trigger::cloudbot::ApiBase;

    #[test]
    fn commands_carry_the_explicit_options_quoted_for_a_shell() {
        let base = ApiBase::parse("http://127.0.0.1:8787").unwrap();
        let job = JobEndpoint::parse(&base, "http://127.0.0.1:8787/demo/jobs/j-1", "JOB").unwrap();
        let next = Next::new(&[
            ("--api-base", "http://127.0.0.1:8787"),
            ("--secret-id", "team's secret"),
        ]);
        assert_eq!(
            next.follow_job(&job),
            "cloudbot --api-base http://127.0.0.1:8787 --secret-id 'team'\\''s secret' job \
             http://127.0.0.1:8787/demo/jobs/j-1 --follow"
        );
        assert_eq!(
            Next::new(&[]).cancel_job(&job),
            "cloudbot cancel http://127.0.0.1:8787/demo/jobs/j-1"
        );
    }
}
