//! The `hookline` binary: parses arguments and configuration, sets up logging, and hands over to the server or
//! to the operator's CLI.

mod bench;
mod cli;
mod receive;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hookline_server::config::{Config, Flags, LogFormat, Sources};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of the system allocator: under load, glibc's malloc and free took about a fifth of the
/// async threads' time (`hookline bench`, perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "hookline", version, about = "Durable, signed webhook delivery in one binary")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the API and the dispatcher, on the embedded store or a shared PostgreSQL database.
    Serve(ServeArgs),
    /// Measure end-to-end delivery throughput and latency against a built-in sink.
    Bench(bench::BenchArgs),
    /// Check a captured request's signature: the body on stdin, the headers as --header 'Name: value'.
    Verify(receive::VerifyArgs),
    /// Receive webhooks on this machine: print and verify each request, answer a chosen status or forward it.
    Listen(receive::ListenArgs),
    /// Look after the embedded store: back it up, or rebuild its file.
    #[command(subcommand)]
    Store(StoreCommand),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Rebuild the embedded store's file: gives the space that retention and deletes freed back to the file
    /// system (a running server reuses it anyway), and moves a store made by an older release onto the current
    /// page size. Stop the server first; needs free space for up to twice the file.
    Vacuum(StoreArgs),
    /// Copy the embedded store to FILE, consistently, while the server runs (or not). Restore by putting the
    /// copy in an empty data directory as hookline.db; see docs/operations.md.
    Backup(BackupArgs),
}

#[derive(clap::Args)]
struct BackupArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Where to write the copy: a new file (an existing one is never overwritten).
    file: PathBuf,
}

#[derive(clap::Args)]
struct StoreArgs {
    /// The server's TOML config file (default: ./hookline.toml if it exists).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the embedded store lives (HOOKLINE_DATA_DIR).
    #[arg(long)]
    data_dir: Option<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A TOML config file (default: ./hookline.toml if it exists).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, such as 127.0.0.1:8750 (HOOKLINE_LISTEN).
    #[arg(long)]
    listen: Option<String>,
    /// Where the embedded store lives (HOOKLINE_DATA_DIR).
    #[arg(long)]
    data_dir: Option<String>,
    /// A shared PostgreSQL database, postgres://user@host:port/db, for several nodes (HOOKLINE_DATABASE_URL).
    #[arg(long)]
    database: Option<String>,
    /// What this node runs: api, worker (the dispatcher) or all (HOOKLINE_ROLE).
    #[arg(long)]
    role: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        Command::Serve(serve_args) => runtime.block_on(serve(serve_args)),
        Command::Client(command) => runtime.block_on(cli::run(command)),
        Command::Store(StoreCommand::Vacuum(store_args)) => vacuum(store_args),
        Command::Store(StoreCommand::Backup(backup_args)) => backup(backup_args),
        Command::Bench(bench_args) => runtime.block_on(bench::run(bench_args)).map(|()| ExitCode::SUCCESS),
        Command::Verify(verify_args) => receive::verify(verify_args),
        Command::Listen(listen_args) => runtime.block_on(receive::listen(listen_args)).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let file = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("could not read the config file {path:?}"))?;
            Some((path.clone(), text))
        }
        None => {
            let path = PathBuf::from("hookline.toml");
            std::fs::read_to_string(&path).ok().map(|text| (path, text))
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    let flags = Flags {
        listen: args.listen.clone(),
        data_dir: args.data_dir.clone(),
        database: args.database.clone(),
        role: args.role.clone(),
    };
    Ok(Config::load(Sources { file, env: &env, flags })?)
}

/// The embedded store's data directory, from the same config file, environment and flag as `serve`; an error
/// naming `command` when the store is on PostgreSQL, where `instead` says what to do.
fn embedded_data_dir(args: StoreArgs, command: &str, instead: &str) -> anyhow::Result<PathBuf> {
    let serve_args =
        ServeArgs { config: args.config, data_dir: args.data_dir, listen: None, database: None, role: None };
    let config = load_config(&serve_args)?;
    match config.database {
        None => Ok(config.data_dir),
        Some(hookline_server::Database::Sqlite { data_dir }) => Ok(data_dir),
        Some(hookline_server::Database::Postgres { .. }) => {
            anyhow::bail!(
                "the store is on PostgreSQL; `hookline store {command}` is for the embedded store only: {instead}"
            )
        }
    }
}

#[allow(clippy::print_stdout)] // What the vacuum did is its whole answer.
fn vacuum(args: StoreArgs) -> anyhow::Result<ExitCode> {
    let data_dir = embedded_data_dir(args, "vacuum", "PostgreSQL's autovacuum reuses freed space")?;
    let started = std::time::Instant::now();
    let done = hookline_server::vacuum(&data_dir)?;
    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!(
        "{}: {:.1} MB → {:.1} MB, pages of {} B → {} B, in {:.1} s",
        done.path.display(),
        mb(done.bytes_before),
        mb(done.bytes_after),
        done.page_size_before,
        done.page_size_after,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)] // What the backup made is its whole answer.
fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let instead = "back it up with pg_dump (docs/operations.md, Backups and restore)";
    let data_dir = embedded_data_dir(args.store, "backup", instead)?;
    let started = std::time::Instant::now();
    let made = hookline_server::backup(&data_dir, &args.file)?;
    println!(
        "{} → {}: {:.1} MB ({} pages) in {:.1} s",
        made.from.display(),
        made.to.display(),
        made.bytes as f64 / 1e6,
        made.pages,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOOKLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A log line that cannot be written (the reader of stderr has gone) is dropped: by default the subscriber
    // reports that on stderr itself, and that report panics the task that logged, such as the one that stops
    // the server on SIGTERM.
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).log_internal_errors(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args)?;
    init_tracing(config.log_format);
    let server = hookline_server::Server::bind(config).await?;
    let address = server.local_addr()?;
    // The banner goes to whoever reads stdout; once nobody does, it is not worth stopping (or panicking) for.
    let mut banner = format!("hookline {} listening on http://{address}\n", env!("CARGO_PKG_VERSION"));
    banner.push_str(&format!("store: {}\n", server.store_location()));
    if let Some(key) = server.generated_admin_key() {
        banner.push_str(&format!("admin key (shown once, stored only as a hash): {key}\n"));
        banner.push_str(&format!("  export HOOKLINE_KEY={key}\n"));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
    drop(stdout);
    let shutdown = CancellationToken::new();
    let signal_shutdown = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal_shutdown.cancel();
        tracing::info!("shutting down: finishing in-flight deliveries");
    });
    server.run(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
