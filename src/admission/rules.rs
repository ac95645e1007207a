//! The admission rules as pure values (docs/queue.md, "Admission control"): which cap a contract
//! has, which slots a lane may take (high has slots of its own, normal never takes them), and how
//! long a message that found the cap reached waits before it is delivered again.

use std::time::Duration;

use crate::cloudbot::PublicId;
use crate::trigger::Lane;

/// The largest cap: the slots of a contract are read in one `BatchGetItem` (100 keys at most).
pub const MAX_CAP: u32 = 100;

/// The first wait of a message that found the cap reached; each later receive doubles it up to
/// [`MAX_WAIT`].
pub const FIRST_WAIT: Duration = Duration::from_secs(15);

/// The longest wait between two receives of a waiting message (why this figure: docs/queue.md,
/// "Waiting for a slot").
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// The caps on running BOT jobs: the stack default, the contracts that differ, and the slots of
/// each capped contract kept for the high lane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    /// Every contract's cap unless listed (0: uncapped).
    pub default: u32,
    /// The contracts with a cap of their own (0: that contract is uncapped).
    pub per_contract: Vec<(PublicId, u32)>,
    /// Slots of a capped contract only the high lane takes (at most cap - 1, so the normal lane
    /// always has one).
    pub high_reserved: u32,
}

impl Caps {
    /// The cap of `public_id` (0: uncapped).
    pub fn of(&self, public_id: &PublicId) -> u32 {
        self.per_contract
            .iter()
            .find(|(id, _)| id == public_id)
            .map_or(self.default, |(_, cap)| *cap)
    }

    /// Whether any contract is capped.
    pub fn any(&self) -> bool {
        self.default > 0 || self.per_contract.iter().any(|(_, cap)| *cap > 0)
    }

    /// The slots of a contract with `cap` the high lane alone may take.
    pub fn reserved_of(&self, cap: u32) -> u32 {
        self.high_reserved.min(cap.saturating_sub(1))
    }
}

/// The slot numbers `lane` tries, in order, for a contract with `cap` of which `reserved` are
/// the high lane's (slots `cap - reserved ..`). The high lane tries its own slots first, so the
/// shared ones stay for the normal backlog; the normal lane starts at `start % shared` (spread
/// over the sandboxes, so concurrent takers rarely race for one item).
pub fn candidates(cap: u32, reserved: u32, lane: Lane, start: u32) -> Vec<u32> {
    match lane {
        Lane::High => (0..cap).rev().collect(),
        Lane::Normal => {
            let shared = cap.saturating_sub(reserved);
            if shared == 0 {
                return Vec::new();
            }
            (0..shared).map(|i| (start + i) % shared).collect()
        }
    }
}

/// How long a message that found the cap reached on its `receive_count`-th receive stays
/// invisible: [`FIRST_WAIT`] doubled per receive, at most [`MAX_WAIT`], plus a spread of up to a
/// quarter of it from `seed` so a backlog does not come back all at once.
pub fn wait_delay(receive_count: u32, seed: u32) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(16);
    let base = FIRST_WAIT
        .saturating_mul(1 << doublings)
        .min(MAX_WAIT)
        .as_secs();
    let spread = base / 4;
    let extra = if spread == 0 {
        0
    } else {
        u64::from(seed) % (spread + 1)
    };
    Duration::from_secs(base + extra)
}

/// The per-contract caps of a comma-separated `public_id=cap` list (empty: none); the error
/// names the entry at fault by its position.
pub fn parse_caps(list: &str) -> Result<Vec<(PublicId, u32)>, String> {
    let mut caps: Vec<(PublicId, u32)> = Vec::new();
    for (n, entry) in list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let position = n + 1;
        let (id, cap) = entry
            .split_once('=')
            .ok_or_else(|| format!("entry {position} is not `public_id=cap`"))?;
        let id =
            PublicId::parse(id.trim(), "contract").map_err(|e| format!("entry {position}: {e}"))?;
        let cap = cap
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|cap| *cap <= MAX_CAP)
            .ok_or_else(|| {
                format!("entry {position}: the cap must be a whole number from 0 to {MAX_CAP}")
            })?;
        if caps.iter().any(|(seen, _)| *seen == id) {
            return Err(format!("lists contract `{id}` twice"));
        }
        caps.push((id, cap));
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> PublicId {
        PublicId::parse(raw, "t").unwrap()
    }

    #[test]
    fn a_contract_has_its_own_cap_or_the_default() {
        let caps = Caps {
            default: 3,
            per_contract: vec![(id("sales"), 5), (id("ops"), 0)],
            high_reserved: 1,
        };
        for (contract, cap) in [("sales", 5), ("ops", 0), ("demo", 3)] {
            assert_eq!(caps.of(&id(contract)), cap, "{contract}");
        }
        assert!(caps.any());
        assert!(!Caps::default().any());
        let only_listed = Caps {
            per_contract: vec![(id("sales"), 2)],
            ..Caps::default()
        };
        assert!(only_listed.any());
        assert_eq!(only_listed.of(&id("demo")), 0);
    }

    #[test]
    fn the_high_lane_has_slots_the_normal_lane_never_takes() {
        // (cap, reserved asked, lane, start) -> slots tried
        let table: &[(u32, u32, Lane, u32, &[u32])] = &[
            (3, 1, Lane::Normal, 0, &[0, 1]),
            (3, 1, Lane::Normal, 1, &[1, 0]),
            (3, 1, Lane::Normal, 7, &[1, 0]),
            (3, 1, Lane::High, 0, &[2, 1, 0]),
            (3, 0, Lane::Normal, 2, &[2, 0, 1]),
            // Never all of them: the normal lane keeps one.
            (1, 1, Lane::Normal, 0, &[0]),
            (2, 5, Lane::Normal, 0, &[0]),
            (2, 5, Lane::High, 0, &[1, 0]),
            (0, 0, Lane::Normal, 0, &[]),
            (0, 0, Lane::High, 0, &[]),
        ];
        for (cap, reserved, lane, start, slots) in table {
            let caps = Caps {
                default: *cap,
                per_contract: Vec::new(),
                high_reserved: *reserved,
            };
            let reserved = caps.reserved_of(*cap);
            assert_eq!(
                candidates(*cap, reserved, *lane, *start),
                *slots,
                "cap {cap}, reserved {reserved}, {lane:?}, start {start}"
            );
        }
    }

    #[test]
    fn a_waiting_message_waits_longer_each_receive_up_to_the_maximum() {
        for (receive_count, seed, seconds) in [
            (0, 0, 15),
            (1, 0, 15),
            (2, 0, 30),
            (3, 0, 60),
            (4, 0, 120),
            (5, 0, 240),
            (6, 0, 300),
            (1_000, 0, 300),
            // The spread: at most a quarter more.
            (1, 3, 18),
            (1, 4, 15),
            (6, 75, 375),
            (6, 76, 300),
        ] {
            assert_eq!(
                wait_delay(receive_count, seed),
                Duration::from_secs(seconds),
                "receive {receive_count}, seed {seed}"
            );
        }
    }

    #[test]
    fn per_contract_caps_are_read_and_bad_entries_named() {
        assert_eq!(parse_caps("").unwrap(), []);
        assert_eq!(
            parse_caps("sales=5, ops=0").unwrap(),
            [(id("sales"), 5), (id("ops"), 0)]
        );
        for (list, problem) in [
            ("sales", "entry 1 is not"),
            ("sales=5,ops=x", "entry 2: the cap"),
            ("sales=101", "entry 1: the cap"),
            ("a/b=1", "entry 1:"),
            ("sales=1,sales=2", "`sales` twice"),
        ] {
            let err = parse_caps(list).unwrap_err();
            assert!(err.contains(problem), "{list}: {err}");
        }
    }
}
