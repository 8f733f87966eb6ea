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

const SELECT_TENANT: &str = "SELECT id, name, created_at FROM tenants";

fn tenant_row(row: &dyn Columns) -> Result<Tenant, StoreError> {
    Ok(Tenant { id: parse_field(&row.text(0)?)?, name: row.text(1)?, created: millis(row, 2)? })
}

/// Whether the tenant exists: the first check of every write on a tenant's behalf.
pub(crate) async fn tenant_exists(sql: &mut impl Sql, tenant: &TenantId) -> Result<bool, StoreError> {
    one(sql, "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)", &[&tenant.as_str()], read_flag).await
}

/// Deleting a tenant removes its rows children first, so no cascade has to find them row by row.
/// `$1` is the tenant's id.
const TENANT_CHILDREN_DELETES: [&str; 6] = [
    "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE tenant_id = $1)",
    "DELETE FROM deliveries WHERE tenant_id = $1",
    "DELETE FROM events WHERE tenant_id = $1",
    "DELETE FROM endpoint_topics WHERE endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = $1)",
    "DELETE FROM endpoints WHERE tenant_id = $1",
    "DELETE FROM api_keys WHERE tenant_id = $1",
];

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
            let tenant = sql.first("SELECT tenant_id FROM api_keys WHERE key_hash = $1", &[&hash], read_text).await?;
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
                    &format!("{SELECT_TENANT} WHERE id > $1 ORDER BY id LIMIT $2"),
                    &[&cursor, &(i64::from(page.limit) + 1)],
                    tenant_row,
                )
                .await?;
            Ok(paginate(tenants, page.limit, |tenant| tenant.id.to_string()))
        })
    }

    pub async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        reading!(self, |sql| sql.first(&format!("{SELECT_TENANT} WHERE id = $1"), &[&id.as_str()], tenant_row).await)
    }

    /// Deletes a tenant with everything it owns; `false` when there was no such tenant.
    pub async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError> {
        writing!(self, |sql| {
            sql.endpoints_changed();
            for statement in TENANT_CHILDREN_DELETES {
                sql.execute(statement, &[&id.as_str()]).await?;
            }
            Ok(sql.execute("DELETE FROM tenants WHERE id = $1", &[&id.as_str()]).await? > 0)
        })
    }
}
