//! The exit codes: one table ([`EXIT_CODES`]) that `--help`, the man page and the error
//! reports are built from, and that a test checks against docs/operations.md ("Exit codes").
//!
//! The codes answer the question a wrapper script has to answer before it runs a BOT again:
//! could this command have started a job? Only 2, 3 and 130 mean "nothing was started"; 4 means
//! "a job may exist", 5 and 6 "a job exists".

use std::process::ExitCode;

use cloudbot_trigger::cloudbot::JobStatus;

/// The process exit code of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command worked.
    Ok = 0,
    /// The job ended in error.
    JobFailed = 1,
    /// Bad arguments or configuration: nothing was sent.
    Usage = 2,
    /// A call failed, and this command started or changed no job.
    NotStarted = 3,
    /// `run`'s execute may have reached Cloud BOT and its answer is unknown: a job may exist.
    JobMayExist = 4,
    /// The job exists and was still running when `--timeout` ran out.
    StillRunning = 5,
    /// The job exists, and its state is unknown to this command.
    StateUnknown = 6,
    /// `schedules diff` / `apply`: hand edits or a foreign schedule under a file entry's name;
    /// `apply` changed nothing.
    HandEdited = 7,
    /// `schedules backfill`: some occurrences of the period were not delivered (a failed or
    /// unanswered delivery, or one whether it ran cannot be known). `enqueue`: some lines
    /// were not enqueued, the others were.
    NotAllDelivered = 8,
    /// Interrupted before anything that could start or change a job was sent.
    Interrupted = 130,
}

/// One row of the exit code table.
pub struct ExitRow {
    /// The code.
    pub exit: Exit,
    /// What it means (Markdown-free text; backticks mark commands).
    pub meaning: &'static str,
}

/// The exit codes and what they mean: the one home of this table.
pub const EXIT_CODES: &[ExitRow] = &[
    ExitRow {
        exit: Exit::Ok,
        meaning: "done; a followed job succeeded (not followed: the job was started or read, or \
                  cancelled by `cancel`)",
    },
    ExitRow {
        exit: Exit::JobFailed,
        meaning: "the job ended in error (Cloud BOT status 1)",
    },
    ExitRow {
        exit: Exit::Usage,
        meaning: "bad arguments, endpoint, input or configuration: nothing was sent",
    },
    ExitRow {
        exit: Exit::NotStarted,
        meaning: "a call failed and this command started or changed no job (for `run`: Cloud BOT \
                  provably started nothing, so running it again is safe), or stdout could not \
                  be written",
    },
    ExitRow {
        exit: Exit::JobMayExist,
        meaning: "a job may exist: `run`'s execute request may have reached Cloud BOT but its \
                  answer is unknown (`CloudBot.OutcomeUnknown`, or Ctrl-C while it was in \
                  flight). Do not run it again blindly: the printed `cloudbot jobs ... --since` \
                  command shows whether it started. `enqueue`: a send's answer was lost (or \
                  Ctrl-C while sending), so the lines it names may be queued; send the file \
                  again with the printed `--key-prefix`",
    },
    ExitRow {
        exit: Exit::StillRunning,
        meaning: "the job exists and was still running when `--timeout` ran out; it goes on \
                  (continue with the printed `cloudbot job ... --follow`)",
    },
    ExitRow {
        exit: Exit::StateUnknown,
        meaning: "the job exists but its state is unknown: following stopped (Ctrl-C, or reads \
                  still failed after the retries) or a `cancel`'s answer was lost; the job \
                  reference endpoint and the command to continue are printed",
    },
    ExitRow {
        exit: Exit::HandEdited,
        meaning: "`schedules diff` / `schedules apply`: a managed schedule was changed by hand \
                  since the last apply, or a schedule not managed by the file has a file \
                  entry's name; `apply` changed nothing (`--overwrite-hand-edits` replaces hand \
                  edits; a schedule that is not managed is never touched)",
    },
    ExitRow {
        exit: Exit::NotAllDelivered,
        meaning: "`schedules backfill`: some occurrences of the period were not delivered: a \
                  delivery failed or got no answer, or whether the occurrence ran cannot be \
                  known (an unknown idempotency record, or older than the idempotency window \
                  without the run ledger); the list says which, the others were delivered. \
                  Running it again delivers only what is still missing. `enqueue`: some lines \
                  were not enqueued (skipped as invalid, or refused by SQS) and the others \
                  were; the list says which",
    },
    ExitRow {
        exit: Exit::Interrupted,
        meaning: "interrupted (Ctrl-C) before anything that could start or change a job was \
                  sent",
    },
];

impl Exit {
    /// The exit code a job state means: an error job fails the command, anything else does not.
    pub fn of_status(status: JobStatus) -> Exit {
        match status {
            JobStatus::Error => Exit::JobFailed,
            JobStatus::Succeeded | JobStatus::Executing | JobStatus::Unknown(_) => Exit::Ok,
        }
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// The table as plain text for `--help` (and from there the man page), wrapped to the help's
/// width with the meanings indented under each other (clap does not wrap this part).
pub fn help_text() -> String {
    const WIDTH: usize = 100;
    const INDENT: usize = 7;
    let mut text = String::from("Exit codes:\n");
    for row in EXIT_CODES {
        let mut line = format!("  {:>3} ", row.exit.code());
        for word in row.meaning.split_whitespace() {
            if line.len() + 1 + word.len() > WIDTH && line.len() > INDENT {
                text.push_str(&line);
                text.push('\n');
                line = " ".repeat(INDENT - 1);
            }
            line.push(' ');
            line.push_str(word);
        }
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// The table as the man page's EXIT STATUS section (roff).
pub fn man_section() -> roff::Roff {
    let mut section = roff::Roff::new();
    section.control("SH", ["EXIT STATUS"]);
    for row in EXIT_CODES {
        section.control("TP", []);
        section.text([roff::bold(row.exit.code().to_string())]);
        section.text([roff::roman(row.meaning)]);
    }
    section
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the "### Exit codes" table of docs/operations.md: (code, meaning).
    fn documented() -> Vec<(u8, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
        let text = std::fs::read_to_string(path).unwrap();
        let section = text
            .split("### Exit codes")
            .nth(1)
            .expect("docs/operations.md has an Exit codes section");
        section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').splitn(2, '|').collect();
                (cells[0].trim().parse().unwrap(), cells[1].trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn the_docs_table_is_the_code_table() {
        let code: Vec<(u8, String)> = EXIT_CODES
            .iter()
            .map(|r| {
                (
                    r.exit.code(),
                    r.meaning.split_whitespace().collect::<Vec<_>>().join(" "),
                )
            })
            .collect();
        assert_eq!(
            documented(),
            code,
            "docs/operations.md's exit code table must list exactly EXIT_CODES (cli/src/exit.rs)"
        );
    }

    #[test]
    fn every_code_has_one_row() {
        let mut codes: Vec<u8> = EXIT_CODES.iter().map(|r| r.exit.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), 10);
        let help = help_text();
        assert!(help.contains("  4  a job may exist"), "{help}");
        assert!(help.lines().all(|l| l.len() <= 100), "{help}");
        assert!(
            help.contains("\n       "),
            "continuation lines are indented: {help}"
        );
    }

    #[test]
    fn job_states_map_to_exit_codes() {
        assert_eq!(Exit::of_status(JobStatus::Succeeded), Exit::Ok);
        assert_eq!(Exit::of_status(JobStatus::Error), Exit::JobFailed);
        assert_eq!(Exit::of_status(JobStatus::Executing), Exit::Ok);
        assert_eq!(ExitCode::from(Exit::JobMayExist), ExitCode::from(4));
    }
}
