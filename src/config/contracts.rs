//! Which secret serves which contract (docs/deploy.md, "Several contracts"): one secret for
//! every contract (`CLOUDBOT_SECRET_ID`, the original configuration, unchanged), or one secret
//! per contract (`CLOUDBOT_CONTRACT_SECRETS`: a comma-separated list of secret ARNs, the
//! contract of each being the last `/` segment of the secret's name, e.g.
//! `…:secret:cloudbot-trigger/contract/sales-AbCdEf` serves `sales`). Exactly one of the two.
//!
//! A list of ARNs rather than a JSON map `{public_id: secret}`: the template passes the same
//! list as the IAM policy's resources, so the function may read exactly the configured secrets
//! (CloudFormation cannot turn the values of a JSON map into a policy's resource list); the
//! price is a naming rule for the secrets (docs/deploy.md has the trade-off).

use std::collections::HashSet;

use super::env::{ConfigError, Env};
use crate::cloudbot::PublicId;

/// Where the Cloud BOT credentials of a contract are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretIds {
    /// One secret (name or ARN) for every contract a request names.
    Shared(String),
    /// One secret ARN per contract; a contract not listed is refused
    /// (`Credentials.UnknownContract`).
    PerContract(Vec<(PublicId, String)>),
}

/// `CLOUDBOT_SECRET_ID`, or `CLOUDBOT_CONTRACT_SECRETS`.
pub(super) fn secret_ids(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<SecretIds, ConfigError> {
    const VAR: &str = "CLOUDBOT_CONTRACT_SECRETS";
    let shared = env.get("CLOUDBOT_SECRET_ID");
    // An empty list (the template's default, joined) is no list.
    let list = env
        .get(VAR)
        .filter(|list| list.split(',').any(|arn| !arn.trim().is_empty()));
    let Some(list) = list else {
        return shared.map(SecretIds::Shared).ok_or_else(|| {
            ConfigError::new(
                "CLOUDBOT_SECRET_ID",
                "is required (secret name or ARN), unless CLOUDBOT_CONTRACT_SECRETS lists one \
                 secret per contract",
            )
        });
    };
    if shared.is_some() {
        return Err(ConfigError::new(
            VAR,
            "is set together with CLOUDBOT_SECRET_ID: use one secret for every contract \
             (CLOUDBOT_SECRET_ID) or one secret per contract (CLOUDBOT_CONTRACT_SECRETS), not both",
        ));
    }
    contract_secrets(&list)
        .map(SecretIds::PerContract)
        .map_err(|reason| ConfigError::new(VAR, reason))
}

/// The contract of each secret ARN of a comma-separated list (the form of
/// `CLOUDBOT_CONTRACT_SECRETS`, also read by the operator CLI); the error names the entry at
/// fault by its position.
pub fn contract_secrets(list: &str) -> Result<Vec<(PublicId, String)>, String> {
    let mut seen = HashSet::new();
    let mut contracts = Vec::new();
    for (n, arn) in list.split(',').map(str::trim).enumerate() {
        let public_id = contract_of(arn).map_err(|reason| format!("entry {} {reason}", n + 1))?;
        if !seen.insert(public_id.clone()) {
            return Err(format!("lists two secrets for contract `{public_id}`"));
        }
        contracts.push((public_id, arn.to_owned()));
    }
    Ok(contracts)
}

/// The contract a secret ARN serves: the last `/` segment of the secret's name (the ARN ends
/// with the name, `-` and the six characters Secrets Manager adds).
fn contract_of(arn: &str) -> Result<PublicId, String> {
    let shape = "is not the full ARN of a Secrets Manager secret \
                 (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX)";
    let Some((head, name_and_suffix)) = arn.split_once(":secret:") else {
        return Err(shape.to_owned());
    };
    let service = head.split(':').collect::<Vec<_>>();
    let name = match (service.as_slice(), name_and_suffix.rsplit_once('-')) {
        ([arn, _, "secretsmanager", region, account], Some((name, suffix)))
            if *arn == "arn"
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && suffix.len() == 6
                && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            name
        }
        _ => return Err(shape.to_owned()),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    PublicId::parse(last, "contract")
        .map_err(|e| format!("names no contract: the last `/` segment of the secret's name {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SALES: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cloudbot-trigger/contract/sales-AbC123";
    const OPS: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ops-Zz9Zz9";

    fn read(vars: &[(&str, &str)]) -> Result<SecretIds, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        secret_ids(&Env::new(|k: &str| map.get(k).cloned()))
    }

    fn id(raw: &str) -> PublicId {
        PublicId::parse(raw, "t").unwrap()
    }

    #[test]
    fn the_single_secret_serves_every_contract_as_before() {
        assert_eq!(
            read(&[("CLOUDBOT_SECRET_ID", "s")]).unwrap(),
            SecretIds::Shared("s".into())
        );
        // An empty list (the template's default) is no list.
        for empty in [" ", ",", " , "] {
            assert_eq!(
                read(&[
                    ("CLOUDBOT_SECRET_ID", "s"),
                    ("CLOUDBOT_CONTRACT_SECRETS", empty)
                ])
                .unwrap(),
                SecretIds::Shared("s".into())
            );
        }
        assert_eq!(read(&[]).unwrap_err().var, "CLOUDBOT_SECRET_ID");
    }

    #[test]
    fn each_secret_serves_the_contract_its_name_ends_with() {
        let list = format!("{SALES}, {OPS}");
        assert_eq!(
            read(&[("CLOUDBOT_CONTRACT_SECRETS", &list)]).unwrap(),
            SecretIds::PerContract(vec![(id("sales"), SALES.into()), (id("ops"), OPS.into()),])
        );
    }

    #[test]
    fn a_bad_list_or_both_forms_name_the_variable() {
        let twice = format!("{SALES},{}", SALES.replace("AbC123", "XyZ789"));
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("CLOUDBOT_CONTRACT_SECRETS", SALES),
                    ("CLOUDBOT_SECRET_ID", "s"),
                ],
                "not both",
            ),
            (
                &[("CLOUDBOT_CONTRACT_SECRETS", &twice)],
                "two secrets for contract `sales`",
            ),
            (
                &[("CLOUDBOT_CONTRACT_SECRETS", "sales")],
                "entry 1 is not the full ARN",
            ),
            (
                &[("CLOUDBOT_CONTRACT_SECRETS", &format!("{SALES},,{OPS}"))],
                "entry 2 is not the full ARN",
            ),
            (
                &[(
                    "CLOUDBOT_CONTRACT_SECRETS",
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cloudbot-trigger/sales",
                )],
                "not the full ARN",
            ),
            (
                &[(
                    "CLOUDBOT_CONTRACT_SECRETS",
                    "arn:aws:s3:eu-west-1:123456789012:secret:sales-AbC123",
                )],
                "not the full ARN",
            ),
            (
                &[(
                    "CLOUDBOT_CONTRACT_SECRETS",
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/-AbC123",
                )],
                "names no contract",
            ),
            (
                &[(
                    "CLOUDBOT_CONTRACT_SECRETS",
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/s+les-AbC123",
                )],
                "names no contract",
            ),
        ];
        for (vars, needle) in cases {
            let err = read(vars).unwrap_err();
            assert_eq!(err.var, "CLOUDBOT_CONTRACT_SECRETS", "{vars:?}");
            assert!(err.to_string().contains(needle), "{vars:?}: {err}");
        }
    }
}
