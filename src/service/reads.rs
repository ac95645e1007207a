//! The reads: `refer_job` (one job) and `list_bots` (the API-published BOTs of a contract).
//! Reads are idempotent by nature: they never touch the idempotency store.

use super::{Scope, Service, answer, upstream, with_refresh};
use crate::cloudbot::{JobEndpoint, PublicId};
use crate::error::Failure;
use crate::metrics::Invocation;
use crate::trigger::Answer;

impl Service {
    /// `refer_job`: the job at `job`.
    pub(super) async fn refer_job(
        &self,
        job: &JobEndpoint,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let fetched = self.credentials.get(scope.deadline).await?;
        record.set_job(job.job_id().as_str());
        let found = with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.refer_job(&call, job),
            |_| (Some(200), None)
        ))?;
        answer::found(&found, job)
    }

    /// `list_bots`: the BOTs of `public_id` published via the API.
    pub(super) async fn list_bots(
        &self,
        public_id: &PublicId,
        scope: Scope,
        record: &mut Invocation,
    ) -> Result<Answer, Failure> {
        let fetched = self.credentials.get(scope.deadline).await?;
        let bots = with_refresh!(self, &fetched, scope, |call| upstream(
            record,
            self.client.list_bots(&call, public_id),
            |_| (Some(200), None)
        ))?;
        answer::bots(public_id, &bots)
    }
}
