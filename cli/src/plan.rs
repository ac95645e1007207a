//! What `cloudbot schedules diff` / `apply` decide, without any AWS call: the Scheduler schedule
//! each file entry should be ([`desired`]), the SHA-256 of everything apply sets on it (the
//! managed marker in its `Description`, `wire::MANAGED_MARKER`), and the plan that makes the
//! stack's group match the file ([`plan`]).
//!
//! A schedule is *managed* when its description is a marker. A managed schedule whose live
//! fields no longer hash to its marker was changed by hand since the last apply: it is reported
//! and not overwritten unless the operator says so. A schedule without the marker is not ours:
//! it is listed and never touched.

use cloudbot_calendar::wire;
use cloudbot_calendar::{RerunPolicy, Schedule};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Scheduler retries of a tick that was not accepted: the template's
/// `Settings.ScheduleMaximumRetryAttempts` (a test checks they agree).
pub const MAXIMUM_RETRY_ATTEMPTS: i32 = 2;
/// The oldest a tick may be delivered: the template schedules' `MaximumEventAgeInSeconds` (a
/// test checks they agree); a 09:00 report should not start at noon.
pub const MAXIMUM_EVENT_AGE_SECONDS: i32 = 900;

/// Where the managed schedules go and what they start: the stack outputs.
#[derive(Debug, Clone)]
pub struct Deploy {
    /// `ScheduleGroupName`.
    pub group: String,
    /// `SchedulerRoleArn`.
    pub role_arn: String,
    /// `ScheduleTargetArn`.
    pub target_arn: String,
    /// `ScheduleDeadLetterQueueArn`.
    pub dead_letter_arn: String,
}

/// Everything `apply` sets on a schedule besides its description (which holds the digest of
/// this), as the Scheduler API names it. The same struct is read back from a live schedule, so
/// a hand edit of any of these fields changes the digest. Field order is the hash's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The schedule's name (the file entry's).
    pub name: String,
    /// `cron(MM HH * * ? *)`: every day at the entry's time of day.
    pub schedule_expression: String,
    /// The entry's time zone.
    pub schedule_expression_timezone: Option<String>,
    /// `ENABLED`, or `DISABLED` for `enabled: false`.
    pub state: Option<String>,
    /// `OFF`.
    pub flexible_time_window_mode: Option<String>,
    /// None (no window while it is off).
    pub flexible_time_window_minutes: Option<i32>,
    /// `ScheduleTargetArn`.
    pub target_arn: String,
    /// `SchedulerRoleArn`.
    pub role_arn: String,
    /// `wire::target_input` as JSON text.
    pub input: Option<String>,
    /// [`MAXIMUM_RETRY_ATTEMPTS`].
    pub maximum_retry_attempts: Option<i32>,
    /// [`MAXIMUM_EVENT_AGE_SECONDS`].
    pub maximum_event_age_seconds: Option<i32>,
    /// `ScheduleDeadLetterQueueArn`.
    pub dead_letter_arn: Option<String>,
    /// Not set by apply; a hand edit that adds one is seen.
    pub kms_key_arn: Option<String>,
    /// Not set by apply (RFC 3339 when set by hand).
    pub start_date: Option<String>,
    /// Not set by apply (RFC 3339 when set by hand).
    pub end_date: Option<String>,
}

impl Applied {
    /// The SHA-256 (lowercase hex) of these fields: the managed marker's value.
    pub fn digest(&self) -> String {
        // Serializing a struct of strings and integers cannot fail; the fallback keeps the
        // function total (and would only make every schedule look hand-edited, never silently
        // overwritten).
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(&canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The names of the fields that differ from `other`.
    pub fn changed_fields(&self, other: &Applied) -> Vec<&'static str> {
        let mut fields = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                fields.push(name);
            }
        };
        check(
            "schedule_expression",
            self.schedule_expression != other.schedule_expression,
        );
        check(
            "schedule_expression_timezone",
            self.schedule_expression_timezone != other.schedule_expression_timezone,
        );
        check("state", self.state != other.state);
        check(
            "flexible_time_window",
            self.flexible_time_window_mode != other.flexible_time_window_mode
                || self.flexible_time_window_minutes != other.flexible_time_window_minutes,
        );
        check("target_arn", self.target_arn != other.target_arn);
        check("role_arn", self.role_arn != other.role_arn);
        check("input", !same_json(&self.input, &other.input));
        check(
            "retry_policy",
            self.maximum_retry_attempts != other.maximum_retry_attempts
                || self.maximum_event_age_seconds != other.maximum_event_age_seconds,
        );
        check(
            "dead_letter_arn",
            self.dead_letter_arn != other.dead_letter_arn,
        );
        check("kms_key_arn", self.kms_key_arn != other.kms_key_arn);
        check(
            "start_date / end_date",
            self.start_date != other.start_date || self.end_date != other.end_date,
        );
        if fields.is_empty() && self != other {
            // Inputs equal as JSON but not as text (re-serialized by hand): still a change.
            fields.push("input");
        }
        fields
    }
}

/// Two JSON texts that mean the same document (key order, spacing).
fn same_json(a: &Option<String>, b: &Option<String>) -> bool {
    let parse = |text: &Option<String>| {
        text.as_deref()
            .map(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    };
    match (parse(a), parse(b)) {
        (Some(Some(a)), Some(Some(b))) => a == b,
        _ => a == b,
    }
}

/// The schedule `apply` makes of a file entry.
pub fn desired(schedule: &Schedule, deploy: &Deploy) -> Applied {
    Applied {
        name: schedule.name.as_str().to_owned(),
        schedule_expression: schedule.scheduler_expression(),
        schedule_expression_timezone: Some(schedule.time_zone.name().to_owned()),
        state: Some(
            if schedule.enabled {
                "ENABLED"
            } else {
                "DISABLED"
            }
            .to_owned(),
        ),
        flexible_time_window_mode: Some("OFF".to_owned()),
        flexible_time_window_minutes: None,
        target_arn: deploy.target_arn.clone(),
        role_arn: deploy.role_arn.clone(),
        input: Some(wire::target_input(schedule).to_string()),
        maximum_retry_attempts: Some(MAXIMUM_RETRY_ATTEMPTS),
        maximum_event_age_seconds: Some(MAXIMUM_EVENT_AGE_SECONDS),
        dead_letter_arn: Some(deploy.dead_letter_arn.clone()),
        kms_key_arn: None,
        start_date: None,
        end_date: None,
    }
}

/// A schedule as it is in the group.
#[derive(Debug, Clone)]
pub struct Live {
    /// Its description (the marker when managed).
    pub description: Option<String>,
    /// Its fields, read back like [`desired`] builds them.
    pub applied: Applied,
}

impl Live {
    /// The digest its marker carries; `None` when it is not managed.
    pub fn marker(&self) -> Option<&str> {
        self.description.as_deref().and_then(wire::managed_digest)
    }

    /// Managed, and its fields no longer hash to its marker.
    pub fn hand_edited(&self) -> bool {
        self.marker()
            .is_some_and(|marker| marker != self.applied.digest())
    }
}

/// What happens to one schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// In the file, not in the group.
    Create,
    /// Managed, unchanged since the last apply, and the file says otherwise.
    Update {
        /// What changes.
        fields: Vec<&'static str>,
    },
    /// Managed and as the file says.
    Unchanged,
    /// Managed, unchanged since the last apply, and no longer in the file.
    Delete,
    /// Managed and changed by hand since the last apply: not overwritten (or deleted) unless
    /// the operator says so.
    HandEdited {
        /// In the file: what differs from it (`None` when the file no longer has the entry,
        /// so apply would delete it).
        fields: Option<Vec<&'static str>>,
    },
    /// In the group without the marker: never touched. `in_file` when a file entry has its
    /// name (apply cannot create that entry).
    NotManaged {
        /// A file entry has this name.
        in_file: bool,
    },
}

/// One schedule of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The schedule's name.
    pub name: String,
    /// What happens to it.
    #[serde(flatten)]
    pub action: Action,
    /// What `apply` sets (for create and update, and for a hand edit being overwritten).
    #[serde(skip)]
    pub desired: Option<Applied>,
    /// The file entry's `policies.rerun` (each attempt a billed run), shown by `diff` and
    /// `apply`; read from the target input apply sets, so it is what the tick will carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun: Option<RerunPolicy>,
}

impl Change {
    /// Whether this change stops `apply` (it then changes nothing). `overwrite` is
    /// `--overwrite-hand-edits`: hand edits are then replaced (or deleted); a schedule that is not
    /// managed never is.
    pub fn blocks(&self, overwrite: bool) -> bool {
        match &self.action {
            Action::HandEdited { .. } => !overwrite,
            Action::NotManaged { in_file } => *in_file,
            _ => false,
        }
    }

    /// What `apply` does to the group for this change, given `overwrite`.
    pub fn effect(&self, overwrite: bool) -> Effect<'_> {
        match (&self.action, &self.desired) {
            (Action::Create, Some(desired)) => Effect::Create(desired),
            (Action::Update { .. }, Some(desired)) => Effect::Update(desired),
            (Action::HandEdited { fields: Some(_) }, Some(desired)) if overwrite => {
                Effect::Update(desired)
            }
            (Action::HandEdited { fields: None }, _) if overwrite => Effect::Delete,
            (Action::Delete, _) => Effect::Delete,
            _ => Effect::None,
        }
    }
}

/// A call `apply` makes.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect<'a> {
    /// CreateSchedule.
    Create(&'a Applied),
    /// UpdateSchedule (it replaces every field).
    Update(&'a Applied),
    /// DeleteSchedule.
    Delete,
    /// Nothing.
    None,
}

/// The plan that makes the group (`live`) match the file (`desired`): file entries in file
/// order, then the group's other schedules by name.
pub fn plan(desired: Vec<Applied>, mut live: Vec<Live>) -> Vec<Change> {
    live.sort_by(|a, b| a.applied.name.cmp(&b.applied.name));
    let mut changes = Vec::new();
    for want in desired {
        let found = live.iter().position(|l| l.applied.name == want.name);
        let action = match found.map(|i| live.remove(i)) {
            None => Action::Create,
            Some(have) if have.marker().is_none() => Action::NotManaged { in_file: true },
            Some(have) if have.hand_edited() => Action::HandEdited {
                fields: Some(want.changed_fields(&have.applied)),
            },
            Some(have) if have.marker() == Some(want.digest().as_str()) => Action::Unchanged,
            Some(have) => Action::Update {
                fields: want.changed_fields(&have.applied),
            },
        };
        changes.push(Change {
            name: want.name.clone(),
            action,
            rerun: rerun_of(&want),
            desired: Some(want),
        });
    }
    for have in live {
        let action = if have.marker().is_none() {
            Action::NotManaged { in_file: false }
        } else if have.hand_edited() {
            Action::HandEdited { fields: None }
        } else {
            Action::Delete
        };
        changes.push(Change {
            name: have.applied.name,
            action,
            desired: None,
            rerun: None,
        });
    }
    changes
}

/// The `policies.rerun` of the definition in `applied`'s target input (`wire::target_input`).
fn rerun_of(applied: &Applied) -> Option<RerunPolicy> {
    let input: serde_json::Value = serde_json::from_str(applied.input.as_deref()?).ok()?;
    serde_json::from_value(input["schedule"]["definition"]["policies"]["rerun"].clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudbot_calendar::ScheduleFile;

    const EXAMPLE: &str = include_str!("../../calendar/examples/schedules.yaml");

    fn deploy() -> Deploy {
        Deploy {
            group: "g".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            target_arn: "arn:aws:states:ap-northeast-1:123456789012:stateMachine:s".into(),
            dead_letter_arn: "arn:aws:sqs:ap-northeast-1:123456789012:q".into(),
        }
    }

    fn desired_all() -> Vec<Applied> {
        ScheduleFile::from_yaml(EXAMPLE)
            .unwrap()
            .schedules
            .iter()
            .map(|s| desired(s, &deploy()))
            .collect()
    }

    /// The schedule as apply left it: its fields and their marker.
    fn applied(want: &Applied) -> Live {
        Live {
            description: Some(wire::managed_description(&want.digest())),
            applied: want.clone(),
        }
    }

    fn actions(changes: &[Change]) -> Vec<(&str, &Action)> {
        changes
            .iter()
            .map(|c| (c.name.as_str(), &c.action))
            .collect()
    }

    #[test]
    fn an_entry_fires_daily_at_its_time_in_its_zone_and_a_paused_one_is_disabled() {
        let all = desired_all();
        let close = &all[1];
        assert_eq!(close.name, "month-end-close");
        assert_eq!(close.schedule_expression, "cron(30 18 * * ? *)");
        assert_eq!(
            close.schedule_expression_timezone.as_deref(),
            Some("Asia/Tokyo")
        );
        assert_eq!(close.state.as_deref(), Some("ENABLED"));
        assert_eq!(close.flexible_time_window_mode.as_deref(), Some("OFF"));
        let input: serde_json::Value =
            serde_json::from_str(close.input.as_deref().unwrap()).unwrap();
        assert_eq!(input["schedule"]["definition"]["name"], "month-end-close");
        assert_eq!(
            input["schedule"]["schedule_arn"],
            wire::SCHEDULE_ARN_PLACEHOLDER
        );
        assert_eq!(all[4].name, "invoices");
        assert_eq!(all[4].state.as_deref(), Some("DISABLED"));
    }

    #[test]
    fn the_group_as_applied_is_unchanged_and_a_new_file_value_is_an_update() {
        let all = desired_all();
        let live: Vec<Live> = all.iter().map(applied).collect();
        let changes = plan(all.clone(), live.clone());
        assert!(changes.iter().all(|c| c.action == Action::Unchanged));

        let mut edited = all.clone();
        edited[0].schedule_expression = "cron(15 9 * * ? *)".into();
        let changes = plan(edited, live);
        assert_eq!(
            changes[0].action,
            Action::Update {
                fields: vec!["schedule_expression"]
            }
        );
        assert_eq!(
            changes[0].effect(false),
            Effect::Update(changes[0].desired.as_ref().unwrap())
        );
    }

    #[test]
    fn a_rerun_policy_is_an_input_change_and_is_shown_with_the_plan() {
        let file = ScheduleFile::from_yaml(EXAMPLE).unwrap();
        let all = desired_all();
        let live: Vec<Live> = all.iter().map(applied).collect();
        let mut schedule = file.schedules[0].clone();
        schedule.policies.rerun = Some(
            serde_json::from_value(
                serde_json::json!({"attempts": 2, "backoff_seconds": 300, "message_pattern": "(?i)timeout"}),
            )
            .unwrap(),
        );
        let mut edited = all.clone();
        edited[0] = desired(&schedule, &deploy());
        let changes = plan(edited, live);
        assert_eq!(
            changes[0].action,
            Action::Update {
                fields: vec!["input"]
            }
        );
        assert_eq!(changes[0].rerun, schedule.policies.rerun);
        let json = serde_json::to_value(&changes[0]).unwrap();
        assert_eq!(json["rerun"]["attempts"], 2);
        // Entries without one show none.
        assert!(changes[1..].iter().all(|c| c.rerun.is_none()));
        assert!(
            serde_json::to_value(&changes[1])
                .unwrap()
                .get("rerun")
                .is_none()
        );
    }

    #[test]
    fn a_hand_edit_is_reported_and_blocks_unless_overwritten() {
        let all = desired_all();
        let mut live: Vec<Live> = all.iter().map(applied).collect();
        live[2].applied.state = Some("DISABLED".into());
        let changes = plan(all.clone(), live.clone());
        assert_eq!(
            changes[2].action,
            Action::HandEdited {
                fields: Some(vec!["state"])
            }
        );
        assert!(changes[2].blocks(false));
        assert_eq!(changes[2].effect(false), Effect::None);
        assert!(!changes[2].blocks(true));
        assert!(matches!(changes[2].effect(true), Effect::Update(_)));

        // Hand-edited and gone from the file: kept unless overwritten.
        let changes = plan(all[..2].to_vec(), live);
        let gone = changes.iter().find(|c| c.name == all[2].name).unwrap();
        assert_eq!(gone.action, Action::HandEdited { fields: None });
        assert_eq!(gone.effect(false), Effect::None);
        assert_eq!(gone.effect(true), Effect::Delete);
        let other = changes.iter().find(|c| c.name == all[3].name).unwrap();
        assert_eq!(other.action, Action::Delete);
    }

    #[test]
    fn a_schedule_without_the_marker_is_never_touched() {
        let all = desired_all();
        let mut foreign = applied(&all[0]);
        foreign.description = Some("made in the console".into());
        let mut stranger = applied(&all[0]);
        stranger.applied.name = "adhoc".into();
        stranger.description = None;
        let changes = plan(all[..1].to_vec(), vec![foreign, stranger]);
        assert_eq!(
            actions(&changes),
            [
                ("daily-sales-report", &Action::NotManaged { in_file: true }),
                ("adhoc", &Action::NotManaged { in_file: false }),
            ]
        );
        for change in &changes {
            assert_eq!(change.effect(true), Effect::None);
        }
        assert!(changes[0].blocks(true));
        assert!(!changes[1].blocks(false));
    }

    #[test]
    fn every_applied_field_is_in_the_digest() {
        let base = desired_all().remove(0);
        let digest = base.digest();
        let variants: [fn(&mut Applied); 12] = [
            |a| a.schedule_expression.push(' '),
            |a| a.schedule_expression_timezone = Some("UTC".into()),
            |a| a.state = Some("DISABLED".into()),
            |a| a.flexible_time_window_minutes = Some(5),
            |a| a.target_arn.push('x'),
            |a| a.role_arn.push('x'),
            |a| a.input = Some("{}".into()),
            |a| a.maximum_retry_attempts = Some(0),
            |a| a.maximum_event_age_seconds = Some(60),
            |a| a.dead_letter_arn = None,
            |a| a.kms_key_arn = Some("k".into()),
            |a| a.end_date = Some("2030-01-01T00:00:00Z".into()),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut edited = base.clone();
            change(&mut edited);
            assert_ne!(edited.digest(), digest, "variant {i}");
            assert!(!edited.changed_fields(&base).is_empty(), "variant {i}");
        }
        assert_eq!(digest.len(), 64);
    }

    /// The retry policy is the template's schedules' (template.yaml is its home).
    #[test]
    fn the_retry_policy_is_the_templates() {
        let template = include_str!("../../template.yaml");
        let lines: Vec<&str> = template.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim() == "ScheduleMaximumRetryAttempts:")
            .unwrap();
        assert_eq!(
            lines[at + 1].trim(),
            format!("Default: {MAXIMUM_RETRY_ATTEMPTS}")
        );
        let ages: Vec<&str> = lines
            .iter()
            .filter(|l| l.trim().starts_with("MaximumEventAgeInSeconds:"))
            .map(|l| l.trim())
            .collect();
        // The function's async invoke config (3600) and the three schedules.
        let schedule_ages = ages
            .iter()
            .filter(|l| **l == format!("MaximumEventAgeInSeconds: {MAXIMUM_EVENT_AGE_SECONDS}"))
            .count();
        assert_eq!(schedule_ages, 3, "{ages:?}");
    }
}
