//! "BOT done" event subscriptions (cloudbot-api.md §3.9, third-party sourced; modelled by the
//! emulator, whose README marks the inferred parts): list, subscribe a webhook, unsubscribe.
//! Used by `cloudbot subscribe` / `unsubscribe` / `subscriptions`; the function only receives
//! the deliveries (`crate::bot_done`).

use reqwest::Method;
use serde::Deserialize;

use super::client::CloudBotClient;
use super::endpoint::BotEndpoint;
use super::error::CloudBotError;
use super::exchange::{Call, Op};
use super::retry::Safety;

/// One subscription of a BOT, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Subscription {
    /// The id to unsubscribe with.
    pub subscribe_id: u64,
    /// `onended`.
    #[serde(default)]
    pub event: Option<String>,
    /// `webhook` (or `mailhook`).
    #[serde(default)]
    pub callback_type: Option<String>,
    /// The webhook's URL (may hold a secret token: show it redacted).
    #[serde(default)]
    pub callback_endpoint: Option<String>,
    /// Whether Cloud BOT has disabled it.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// A subscription just made.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Subscribed {
    /// Its id.
    pub subscribe_id: u64,
}

/// [I] The list's wrapper key is not published; the emulator's is `subscriptions`.
#[derive(Deserialize)]
struct SubscriptionList {
    #[serde(default)]
    subscriptions: Vec<Subscription>,
}

fn subscriptions_url(client: &CloudBotClient, bot: &BotEndpoint) -> String {
    client.base().join(&format!(
        "/{}/bots/{}/subscriptions",
        bot.public_id().as_str(),
        bot.bot_id().as_str()
    ))
}

impl CloudBotClient {
    /// `GET /{public_id}/bots/{bot_id}/subscriptions`: the BOT's event subscriptions.
    pub async fn list_subscriptions(
        &self,
        call: &Call<'_>,
        bot: &BotEndpoint,
    ) -> Result<Vec<Subscription>, CloudBotError> {
        let url = subscriptions_url(self, bot);
        let answer = self
            .exchange(
                call,
                Op {
                    method: Method::GET,
                    template: "/{public_id}/bots/{bot_id}/subscriptions",
                    url: &url,
                    body: None,
                    safety: Safety::Idempotent,
                    job_answer: false,
                },
            )
            .await?;
        let list: SubscriptionList =
            serde_json::from_slice(&answer.body).map_err(|_| CloudBotError::InvalidResponse {
                status: answer.status,
                detail: "body is not a subscription list",
            })?;
        Ok(list.subscriptions)
    }

    /// `POST /{public_id}/bots/{bot_id}/subscriptions`: every end of the BOT's jobs is then
    /// POSTed to `callback_endpoint` (`event: onended`, `callback_type: webhook`). Sent at most
    /// once, like an execute: a repeated POST would add a second subscription, so a request that
    /// may have reached the server ends in [`CloudBotError::OutcomeUnknown`] (list to find out).
    pub async fn subscribe(
        &self,
        call: &Call<'_>,
        bot: &BotEndpoint,
        callback_endpoint: &str,
    ) -> Result<Subscribed, CloudBotError> {
        let url = subscriptions_url(self, bot);
        let body = serde_json::to_vec(&serde_json::json!({
            "event": "onended",
            "callback_type": "webhook",
            "callback_endpoint": callback_endpoint,
        }))
        .map_err(|_| CloudBotError::Internal {
            detail: "the subscribe request could not be encoded",
        })?;
        let answer = self
            .exchange(
                call,
                Op {
                    method: Method::POST,
                    template: "/{public_id}/bots/{bot_id}/subscriptions",
                    url: &url,
                    body: Some(body),
                    safety: Safety::ExecuteOnce,
                    job_answer: false,
                },
            )
            .await?;
        serde_json::from_slice(&answer.body).map_err(|_| CloudBotError::InvalidResponse {
            status: answer.status,
            detail: "body has no subscribe_id",
        })
    }

    /// `DELETE /{public_id}/bots/{bot_id}/subscriptions/{subscribe_id}`. Idempotent in effect
    /// (a second delete answers 404, which the caller may take as done).
    pub async fn unsubscribe(
        &self,
        call: &Call<'_>,
        bot: &BotEndpoint,
        subscribe_id: u64,
    ) -> Result<(), CloudBotError> {
        let url = format!("{}/{subscribe_id}", subscriptions_url(self, bot));
        self.exchange(
            call,
            Op {
                method: Method::DELETE,
                template: "/{public_id}/bots/{bot_id}/subscriptions/{subscribe_id}",
                url: &url,
                body: None,
                safety: Safety::Idempotent,
                job_answer: false,
            },
        )
        .await
        .map(|_| ())
    }
}
