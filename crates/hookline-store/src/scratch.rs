//! Databases for tests: a PostgreSQL database of a test's own, made empty on a server the test names and dropped
//! (with its connections) when the handle is, even when the test fails. Shared by every crate's tests that run on
//! PostgreSQL, so that each does not write its own.

use std::sync::atomic::{AtomicU32, Ordering};

/// A database of one test's own; `url` reaches it.
#[derive(Debug)]
pub struct ScratchDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl ScratchDatabase {
    /// A new empty database on the server `admin_url` reaches (a URL naming any database of it), named after
    /// `label`, the process and a counter, so that tests running at once never share one.
    pub async fn create(admin_url: &str, label: &str) -> Result<ScratchDatabase, tokio_postgres::Error> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let label: String =
            label.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        let name = format!("hookline_{label}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(base, _)| base);
        Ok(ScratchDatabase { url: format!("{base}/{name}"), name, admin_url: admin_url.to_owned() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // A thread of its own can block whether or not this runs inside a runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}: {dropped:?}", self.name);
        }
    }
}
