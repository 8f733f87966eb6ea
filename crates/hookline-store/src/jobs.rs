//! Leases on background jobs: which node runs a periodic job (retention, endpoint health, debounce flushes) at a
//! time, when several share one database. A node takes a job's lease when it is free or has run out, and renews
//! it each time it runs the job; a node that stops gives it back, and one that dies loses it when it runs out.

use hookline_core::time::Timestamp;

use crate::sql::Sql;
use crate::{Store, StoreError};

impl Store {
    /// Takes or renews the lease on job `name` for `holder` until `until`, unless another holder's lease still
    /// holds at `now`; true when `holder` has it.
    pub async fn lead_job(
        &self,
        name: &'static str,
        holder: String,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        writing!(self, |sql| {
            let taken = sql
                .execute(
                    "INSERT INTO job_leases (name, holder, until_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
                     WHERE job_leases.holder = excluded.holder OR job_leases.until_at <= $4",
                    &[&name, &holder, &until.unix_millis(), &now.unix_millis()],
                )
                .await?;
            Ok(taken > 0)
        })
    }

    /// Gives back `holder`'s lease on job `name`, so another node may take it at once.
    pub async fn release_job(&self, name: &'static str, holder: String) -> Result<(), StoreError> {
        writing!(self, |sql| {
            sql.execute("DELETE FROM job_leases WHERE name = $1 AND holder = $2", &[&name, &holder]).await?;
            Ok(())
        })
    }
}
