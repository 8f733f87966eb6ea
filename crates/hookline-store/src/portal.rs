//! The portal's links and sessions. A link is a single-use token (only its hash is kept) that a tenant's user
//! redeems within its lifetime to start a session; a session is a token carried by the user's browser (its hash
//! kept too), with what it may do, an idle and an absolute limit, and a CSRF token for its forms. Sessions are
//! listed and revoked per tenant; expired links and sessions are purged in the background.

use std::time::Duration;

use hookline_core::id::{PortalSessionId, TenantId};
use hookline_core::portal::Capability;
use hookline_core::time::Timestamp;

use crate::sql::{Columns, Sql, Value, millis, parse_field};
use crate::tenants::tenant_exists;
use crate::{Store, StoreError};

/// A portal session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalSession {
    pub id: PortalSessionId,
    pub tenant: TenantId,
    pub capabilities: Vec<Capability>,
    /// Who the platform said the user is, if it said.
    pub user: Option<String>,
    /// The token its forms carry, compared with what each state-changing request sends.
    pub csrf: String,
    pub created: Timestamp,
    pub last_seen: Timestamp,
    /// Its absolute end, however active it is.
    pub expires: Timestamp,
    pub revoked: Option<Timestamp>,
    /// How its link asked the portal to look, as JSON (`hookline_core::portal::Theme`).
    pub theme: Option<String>,
}

/// What a link grants, as its creator asked.
#[derive(Clone, Debug)]
pub struct NewPortalLink {
    pub token_hash: String,
    pub tenant: TenantId,
    pub capabilities: Vec<Capability>,
    pub user: Option<String>,
    pub expires: Timestamp,
    /// As JSON, checked by the caller.
    pub theme: Option<String>,
}

/// A session to start when a link is redeemed.
#[derive(Clone, Debug)]
pub struct NewPortalSession {
    pub token_hash: String,
    pub csrf: String,
    /// How long the session lasts at most.
    pub lifetime: Duration,
}

/// How often a session's last use is written: a request within this of the last write does not write again.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

const SESSION_COLUMNS: &str =
    "id, tenant_id, capabilities, user_label, csrf, created_at, last_seen_at, expires_at, revoked_at, theme";

fn session_row(row: &dyn Columns) -> Result<PortalSession, StoreError> {
    Ok(PortalSession {
        id: parse_field(&row.text(0)?)?,
        tenant: parse_field(&row.text(1)?)?,
        capabilities: split_capabilities(&row.text(2)?)?,
        user: row.optional_text(3)?,
        csrf: row.text(4)?,
        created: millis(row, 5)?,
        last_seen: millis(row, 6)?,
        expires: millis(row, 7)?,
        revoked: row.optional_integer(8)?.map(Timestamp::from_unix_millis),
        theme: row.optional_text(9)?,
    })
}

fn join_capabilities(capabilities: &[Capability]) -> String {
    capabilities.iter().map(|capability| capability.as_str()).collect::<Vec<_>>().join(",")
}

fn split_capabilities(text: &str) -> Result<Vec<Capability>, StoreError> {
    text.split(',').filter(|part| !part.is_empty()).map(parse_field).collect()
}

impl Store {
    /// Stores a new link; `false` when the tenant does not exist.
    pub async fn create_portal_link(&self, link: NewPortalLink) -> Result<bool, StoreError> {
        let now = self.clock.now().unix_millis();
        writing!(self, |sql| {
            if !tenant_exists(sql, &link.tenant).await? {
                return Ok(false);
            }
            let capabilities = join_capabilities(&link.capabilities);
            let values: [&dyn Value; 7] = [
                &link.token_hash,
                &link.tenant.as_str(),
                &capabilities,
                &link.user,
                &now,
                &link.expires.unix_millis(),
                &link.theme,
            ];
            sql.execute(
                "INSERT INTO portal_links (token_hash, tenant_id, capabilities, user_label, created_at, expires_at,
                    theme)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &values,
            )
            .await?;
            Ok(true)
        })
    }

    /// Uses a link once: the session it starts, or `None` when the link is unknown, used already or expired (the
    /// three are not told apart, so a guess learns nothing).
    pub async fn redeem_portal_link(
        &self,
        link_hash: String,
        session: NewPortalSession,
    ) -> Result<Option<PortalSession>, StoreError> {
        let now = self.clock.now();
        let id = PortalSessionId::generate_at(now);
        writing!(self, |sql| {
            let values: [&dyn Value; 2] = [&now.unix_millis(), &link_hash];
            let used = sql
                .execute(
                    "UPDATE portal_links SET used_at = $1
                     WHERE used_at IS NULL AND expires_at > $1 AND token_hash = $2",
                    &values,
                )
                .await?;
            if used == 0 {
                return Ok(None);
            }
            let expires = now.saturating_add(session.lifetime).unix_millis();
            let values: [&dyn Value; 6] =
                [&id.as_str(), &session.token_hash, &session.csrf, &now.unix_millis(), &expires, &link_hash];
            sql.execute(
                "INSERT INTO portal_sessions (id, token_hash, tenant_id, capabilities, user_label, csrf, created_at,
                    last_seen_at, expires_at, theme)
                 SELECT $1, $2, tenant_id, capabilities, user_label, $3, $4, $4, $5, theme FROM portal_links
                 WHERE token_hash = $6",
                &values,
            )
            .await?;
            let statement = format!("SELECT {SESSION_COLUMNS} FROM portal_sessions WHERE id = $1");
            sql.first(&statement, &[&id.as_str()], session_row).await
        })
    }

    /// Starts a session without a link (a tenant key signed in at the portal, or an operator opening a tenant's
    /// portal from the console); `None` when the tenant does not exist.
    pub async fn create_portal_session(
        &self,
        tenant: TenantId,
        capabilities: Vec<Capability>,
        user: Option<String>,
        session: NewPortalSession,
    ) -> Result<Option<PortalSession>, StoreError> {
        let now = self.clock.now();
        let id = PortalSessionId::generate_at(now);
        writing!(self, |sql| {
            if !tenant_exists(sql, &tenant).await? {
                return Ok(None);
            }
            let capabilities = join_capabilities(&capabilities);
            let expires = now.saturating_add(session.lifetime).unix_millis();
            let values: [&dyn Value; 8] = [
                &id.as_str(),
                &session.token_hash,
                &tenant.as_str(),
                &capabilities,
                &session.csrf,
                &now.unix_millis(),
                &expires,
                &user,
            ];
            sql.execute(
                "INSERT INTO portal_sessions (id, token_hash, tenant_id, capabilities, csrf, created_at, last_seen_at,
                    expires_at, user_label)
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)",
                &values,
            )
            .await?;
            let statement = format!("SELECT {SESSION_COLUMNS} FROM portal_sessions WHERE id = $1");
            sql.first(&statement, &[&id.as_str()], session_row).await
        })
    }

    /// The live session a token belongs to: not revoked, not past its end, used within `idle`. Its last use is
    /// written at most every minute.
    pub async fn portal_session(
        &self,
        token_hash: String,
        idle: Duration,
    ) -> Result<Option<PortalSession>, StoreError> {
        let now = self.clock.now();
        let statement = format!("SELECT {SESSION_COLUMNS} FROM portal_sessions WHERE token_hash = $1");
        let found = reading!(self, |sql| sql.first(&statement, &[&token_hash.as_str()], session_row).await)?;
        let Some(mut session) = found else { return Ok(None) };
        let live = session.revoked.is_none() && now < session.expires && now < session.last_seen.saturating_add(idle);
        if !live {
            return Ok(None);
        }
        session.last_seen =
            self.touch_session("portal_sessions", session.id.to_string(), session.last_seen, now).await?;
        Ok(Some(session))
    }

    /// Notes a session of `table` (`portal_sessions`, `console_sessions`) used at `now`, last noted at `last_seen`:
    /// written at most every `TOUCH_EVERY`. When its use is now noted as.
    pub(crate) async fn touch_session(
        &self,
        table: &'static str,
        id: String,
        last_seen: Timestamp,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError> {
        if now < last_seen.saturating_add(TOUCH_EVERY) {
            return Ok(last_seen);
        }
        let statement = format!("UPDATE {table} SET last_seen_at = $1 WHERE id = $2");
        writing!(self, |sql| {
            let values: [&dyn Value; 2] = [&now.unix_millis(), &id.as_str()];
            sql.execute(&statement, &values).await
        })?;
        Ok(now)
    }

    /// A tenant's sessions that are not over (revoked or past their end), newest first.
    pub async fn list_portal_sessions(&self, tenant: TenantId) -> Result<Vec<PortalSession>, StoreError> {
        let now = self.clock.now().unix_millis();
        let statement = format!(
            "SELECT {SESSION_COLUMNS} FROM portal_sessions
             WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY id DESC LIMIT 1000"
        );
        reading!(self, |sql| sql.query(&statement, &[&tenant.as_str(), &now], session_row).await)
    }

    /// Ends a session of `tenant` at once; `false` when it has none with this id.
    pub async fn revoke_portal_session(&self, tenant: TenantId, id: PortalSessionId) -> Result<bool, StoreError> {
        let now = self.clock.now().unix_millis();
        writing!(self, |sql| {
            let values: [&dyn Value; 3] = [&now, &id.as_str(), &tenant.as_str()];
            let revoked = sql
                .execute(
                    "UPDATE portal_sessions SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND tenant_id = $3",
                    &values,
                )
                .await?;
            Ok(revoked > 0)
        })
    }

    /// Removes links and sessions that can no longer be used (past their end, or revoked a day ago), at most
    /// `limit` of each; how many it removed.
    pub async fn purge_portal(&self, limit: u32) -> Result<u64, StoreError> {
        let now = self.clock.now().unix_millis();
        let day_ago = now - 86_400_000;
        writing!(self, |sql| {
            let values: [&dyn Value; 2] = [&now, &i64::from(limit)];
            let links = sql
                .execute(
                    "DELETE FROM portal_links WHERE token_hash IN (
                        SELECT token_hash FROM portal_links WHERE expires_at <= $1 LIMIT $2)",
                    &values,
                )
                .await?;
            let values: [&dyn Value; 3] = [&now, &day_ago, &i64::from(limit)];
            let sessions = sql
                .execute(
                    "DELETE FROM portal_sessions WHERE id IN (
                        SELECT id FROM portal_sessions WHERE expires_at <= $1 OR revoked_at <= $2 LIMIT $3)",
                    &values,
                )
                .await?;
            let values: [&dyn Value; 2] = [&now, &i64::from(limit)];
            let operators = sql
                .execute(
                    "DELETE FROM console_sessions WHERE id IN (
                        SELECT id FROM console_sessions WHERE expires_at <= $1 LIMIT $2)",
                    &values,
                )
                .await?;
            Ok(links + sessions + operators)
        })
    }
}
