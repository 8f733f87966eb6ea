//! `hookline tenant`: the platform's customers (admin key).

use clap::Subcommand;
use hookline_server::api::types::{ApiKeyWithSecret, CreateKeyRequest, CreateTenantRequest, TenantResponse};

use super::{Answer, Api, Cell, Connection, Field, say, show, table};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Add {
        id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show { tenant: String },
    /// Delete a tenant with its endpoints, events, deliveries and keys (in the background; it is gone at once).
    Delete { tenant: String },
    /// Create an API key for a tenant (shown once).
    Key { tenant: String },
}

const FIELDS: &[Field<TenantResponse>] = &[
    ("id", |tenant| tenant.id.cell()),
    ("name", |tenant| tenant.name.cell()),
    ("created", |tenant| tenant.created.cell()),
];

pub async fn run(command: TenantCommand, connection: &Connection) -> anyhow::Result<()> {
    let api = Api::new(connection)?;
    match command {
        TenantCommand::Add { id, name } => {
            let tenant = api.post("/v1/tenants", &CreateTenantRequest { id, name }, &[]).await?;
            show(connection, &tenant, FIELDS);
        }
        TenantCommand::List => table(connection, &api.get("/v1/tenants?limit=1000").await?, FIELDS),
        TenantCommand::Show { tenant } => show(connection, &api.get(&format!("/v1/tenants/{tenant}")).await?, FIELDS),
        TenantCommand::Delete { tenant } => {
            api.delete(&format!("/v1/tenants/{tenant}")).await?;
            say(&format!("tenant {tenant} deleted; its rows are removed in the background"));
        }
        TenantCommand::Key { tenant } => {
            let path = format!("/v1/tenants/{tenant}/keys");
            let key: Answer<ApiKeyWithSecret> = api.post(&path, &CreateKeyRequest::default(), &[]).await?;
            show(
                connection,
                &key,
                &[
                    ("id", |key| key.api_key.id.cell()),
                    ("tenant", |key| key.api_key.tenant.cell()),
                    ("key", |key| key.key.cell()),
                ],
            );
        }
    }
    Ok(())
}
