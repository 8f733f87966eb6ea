//! Tenants (the platform's customers), their API keys, and the admin key: who may call the API, and for whom.

use hookline_core::id::{KeyId, TenantId};
use hookline_core::time::Timestamp;

use crate::sql::{Columns, PageRequest, Sql, Value, millis, one, paginate, parse_field, read_flag, read_text};
use crate::{Page, Store, StoreError};

#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created: Timestamp,
}

/// A tenant key's public part; the key itself is shown once, at creation, and stored only as a hash.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: KeyId,
    pub tenant: TenantId,
    pub name: String,
    pub created: Timestamp,
}

/// Who an API key belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Tenant(TenantId),
}

/// Live tenants: a deleted one is gone from every read at once, while its rows are removed in the background.
const SELECT_TENANT: &str = "SELECT id, name, created_at FROM tenants WHERE deleted_at IS NULL";

const BEING_DELETED: &str = "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NOT NULL)";

fn tenant_row(row: &dyn Columns) -> Result<Tenant, StoreError> {
    Ok(Tenant { id: parse_field(&row.text(0)?)?, name: row.text(1)?, created: millis(row, 2)? })
}

/// Whether the tenant exists: the first check of every write on a tenant's behalf.
pub(crate) async fn tenant_exists(sql: &mut impl Sql, tenant: &TenantId) -> Result<bool, StoreError> {
    let statement = "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL)";
    one(sql, statement, &[&tenant.as_str()], read_flag).await
}

impl Store {
    // ----- the admin key -----

    /// Stores `hash` as the admin key's unless one is stored already (another node may have won the race), and
    /// returns the hash that is stored.
    pub async fn settle_admin_key_hash(&self, hash: String) -> Result<String, StoreError> {
        writing!(self, |sql| {
            sql.execute(
                "INSERT INTO settings (key, value) VALUES ('admin_key_hash', $1) ON CONFLICT (key) DO NOTHING",
                &[&hash],
            )
            .await?;
            one(sql, "SELECT value FROM settings WHERE key = 'admin_key_hash'", &[], read_text).await
        })
    }

    // ----- tenant keys -----

    /// The tenant whose key hashes to `hash`, if any.
    pub async fn tenant_for_key_hash(&self, hash: String) -> Result<Option<TenantId>, StoreError> {
        reading!(self, |sql| {
            let statement = "SELECT k.tenant_id FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
                 WHERE k.key_hash = $1 AND t.deleted_at IS NULL";
            let tenant = sql.first(statement, &[&hash], read_text).await?;
            tenant.map(|text| parse_field::<TenantId>(&text)).transpose()
        })
    }

    /// Stores a tenant key's hash; `None` when the tenant does not exist.
    pub async fn insert_api_key(
        &self,
        tenant: TenantId,
        hash: String,
        name: String,
    ) -> Result<Option<ApiKey>, StoreError> {
        let now = self.clock.now();
        let key = ApiKey { id: KeyId::generate_at(now), tenant, name, created: now };
        writing!(self, |sql| {
            if !tenant_exists(sql, &key.tenant).await? {
                return Ok(None);
            }
            let values: [&dyn Value; 5] =
                [&key.id.as_str(), &key.tenant.as_str(), &hash, &key.name, &key.created.unix_millis()];
            sql.execute(
                "INSERT INTO api_keys (id, tenant_id, key_hash, name, created_at) VALUES ($1, $2, $3, $4, $5)",
                &values,
            )
            .await?;
            Ok(Some(key))
        })
    }

    // ----- tenants -----

    pub async fn create_tenant(&self, id: TenantId, name: String) -> Result<Tenant, StoreError> {
        let tenant = Tenant { id, name, created: self.clock.now() };
        writing!(self, |sql| {
            let inserted = sql
                .execute(
                    "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                    &[&tenant.id.as_str(), &tenant.name, &tenant.created.unix_millis()],
                )
                .await?;
            if inserted == 0 {
                if one(sql, BEING_DELETED, &[&tenant.id.as_str()], read_flag).await? {
                    return Err(StoreError::BeingDeleted { what: "tenant", id: tenant.id.to_string() });
                }
                return Err(StoreError::Conflict { what: "tenant", id: tenant.id.to_string() });
            }
            Ok(tenant)
        })
    }

    pub async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, StoreError> {
        reading!(self, |sql| {
            let cursor = page.cursor.as_deref().unwrap_or("");
            let tenants = sql
                .query(
                    &format!("{SELECT_TENANT} AND id > $1 ORDER BY id LIMIT $2"),
                    &[&cursor, &(i64::from(page.limit) + 1)],
                    tenant_row,
                )
                .await?;
            Ok(paginate(tenants, page.limit, |tenant| tenant.id.to_string()))
        })
    }

    pub async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        reading!(self, |sql| sql.first(&format!("{SELECT_TENANT} AND id = $1"), &[&id.as_str()], tenant_row).await)
    }

    /// Whether the tenant was deleted and its rows are still being removed.
    pub async fn tenant_being_deleted(&self, id: TenantId) -> Result<bool, StoreError> {
        reading!(self, |sql| one(sql, BEING_DELETED, &[&id.as_str()], read_flag).await)
    }

    /// Deletes a tenant with everything it owns; `false` when there was no such tenant. The tenant is gone from
    /// every read at once, its endpoints deliver nothing more, and its rows are removed in the background, a
    /// batch at a time (`Store::remove_deleted`), so that a tenant of any size is deleted without holding up
    /// other writes.
    pub async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError> {
        let now = self.clock.now().unix_millis();
        writing!(self, |sql| {
            let marked = sql
                .execute(
                    "UPDATE tenants SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
                    &[&now, &id.as_str()],
                )
                .await?;
            if marked == 0 {
                return Ok(false);
            }
            sql.endpoints_changed();
            sql.execute(
                "UPDATE endpoints SET enabled = FALSE, deleted_at = $1 WHERE tenant_id = $2 AND deleted_at IS NULL",
                &[&now, &id.as_str()],
            )
            .await?;
            // Its portal sessions end at once, and its links open nothing.
            sql.execute(
                "UPDATE portal_sessions SET revoked_at = $1 WHERE tenant_id = $2 AND revoked_at IS NULL",
                &[&now, &id.as_str()],
            )
            .await?;
            sql.execute("DELETE FROM portal_links WHERE tenant_id = $1", &[&id.as_str()]).await?;
            Ok(true)
        })
    }
}
