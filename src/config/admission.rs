//! Admission control's variables (docs/queue.md, "Admission control"): `CLOUDBOT_RUNNING_CAP`
//! (every contract's cap on running BOT jobs; unset or 0: uncapped), `CLOUDBOT_CONTRACT_RUNNING_CAPS`
//! (`public_id=cap,...`: the contracts whose cap differs) and `CLOUDBOT_HIGH_RESERVED_SLOTS`
//! (slots of each capped contract only the high lane takes, default 1). The slots live in the
//! run ledger table, so a cap needs `CLOUDBOT_RUN_LEDGER_TABLE`.

use super::LedgerConfig;
use super::env::{ConfigError, Env};
use crate::admission::{Caps, MAX_CAP, parse_caps};

const CAP: &str = "CLOUDBOT_RUNNING_CAP";
const PER_CONTRACT: &str = "CLOUDBOT_CONTRACT_RUNNING_CAPS";
const RESERVED: &str = "CLOUDBOT_HIGH_RESERVED_SLOTS";

/// The caps, `None` when no contract is capped.
pub(super) fn admission(
    env: &Env<impl Fn(&str) -> Option<String>>,
    ledger: Option<&LedgerConfig>,
) -> Result<Option<Caps>, ConfigError> {
    let caps = Caps {
        default: env.u32(CAP, 0, 0, MAX_CAP)?,
        per_contract: parse_caps(&env.get(PER_CONTRACT).unwrap_or_default())
            .map_err(|reason| ConfigError::new(PER_CONTRACT, reason))?,
        high_reserved: env.u32(RESERVED, 1, 0, MAX_CAP)?,
    };
    if !caps.any() {
        return Ok(None);
    }
    if ledger.is_none() {
        return Err(ConfigError::new(
            CAP,
            "needs CLOUDBOT_RUN_LEDGER_TABLE: the slots of a capped contract are kept in the run \
             ledger table (or set no cap)",
        ));
    }
    Ok(Some(caps))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::cloudbot::PublicId;

    fn read(vars: &[(&str, &str)], ledger: bool) -> Result<Option<Caps>, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = LedgerConfig {
            table: "runs".into(),
            retention: Duration::from_secs(86_400),
        };
        admission(
            &Env::new(|k: &str| map.get(k).cloned()),
            if ledger { Some(&config) } else { None },
        )
    }

    #[test]
    fn no_cap_is_no_admission_and_a_cap_needs_the_ledger() {
        assert_eq!(read(&[], false).unwrap(), None);
        assert_eq!(read(&[(CAP, "0")], false).unwrap(), None);
        let caps = read(&[(CAP, "3")], true).unwrap().unwrap();
        assert_eq!((caps.default, caps.high_reserved), (3, 1));
        let err = read(&[(CAP, "3")], false).unwrap_err();
        assert!(
            err.to_string().contains("CLOUDBOT_RUN_LEDGER_TABLE"),
            "{err}"
        );
        let caps = read(&[(PER_CONTRACT, "sales=2"), (RESERVED, "0")], true)
            .unwrap()
            .unwrap();
        assert_eq!(
            caps.per_contract,
            [(PublicId::parse("sales", "t").unwrap(), 2)]
        );
        assert_eq!(caps.high_reserved, 0);
    }

    #[test]
    fn bad_values_are_named() {
        for (vars, var) in [
            (&[(CAP, "x")][..], CAP),
            (&[(CAP, "101")][..], CAP),
            (&[(PER_CONTRACT, "sales")][..], PER_CONTRACT),
            (&[(CAP, "2"), (RESERVED, "-1")][..], RESERVED),
        ] {
            let err = read(vars, true).unwrap_err();
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
