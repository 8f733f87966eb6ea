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
#[command(after_help = hookline_server::config::help())]
struct ServeArgs {
    /// A TOML config file (default: ./hookline.toml if it exists).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    keys: KeyFlags,
}

/// The flags of the configuration keys that have one, declared with the keys (`hookline_server::config::KEYS`).
#[derive(Default)]
struct KeyFlags(Flags);

/// The keys that have a flag, with it.
fn flagged_keys() -> impl Iterator<Item = (&'static str, &'static hookline_server::config::Key)> {
    hookline_server::config::KEYS.iter().filter_map(|key| Some((key.flag?, key)))
}

impl clap::FromArgMatches for KeyFlags {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let given = flagged_keys()
            .filter_map(|(flag, _)| Some((flag.to_owned(), matches.get_one::<String>(flag)?.clone())))
            .collect();
        Ok(KeyFlags(Flags(given)))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for KeyFlags {
    fn augment_args(command: clap::Command) -> clap::Command {
        flagged_keys().fold(command, |command, (flag, key)| {
            command.arg(clap::Arg::new(flag).long(flag).help(format!("{} ({})", key.description, key.env())))
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
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
    Ok(Config::load(Sources { file, env: &env, flags: args.keys.0.clone() })?)
}

/// The embedded store's data directory, from the same config file, environment and flag as `serve`; an error
/// naming `command` when the store is on PostgreSQL, where `instead` says what to do.
fn embedded_data_dir(args: StoreArgs, command: &str, instead: &str) -> anyhow::Result<PathBuf> {
    let flags = Flags(args.data_dir.map(|dir| ("data-dir".to_owned(), dir)).into_iter().collect());
    let serve_args = ServeArgs { config: args.config, keys: KeyFlags(flags) };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command a reader may paste from the docs: each `hookline …` (or `cargo run --release -- …`) in a
    /// fenced block of README.md and docs/*.md, its line continuations joined, with comments, variable
    /// assignments before it and what follows a pipe or `&&` left off.
    fn documented_commands() -> Vec<(String, Vec<String>)> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut pages = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
        for entry in std::fs::read_dir(root.join("docs")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|extension| extension == "md") {
                pages.push(path);
            }
        }
        let mut commands = Vec::new();
        for page in pages {
            let text = std::fs::read_to_string(&page).unwrap();
            let name = page.file_name().unwrap().to_string_lossy().into_owned();
            let mut in_block = false;
            let mut pending = String::new();
            for (number, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("```") {
                    in_block = !in_block;
                    continue;
                }
                if !in_block {
                    continue;
                }
                if let Some(continued) = line.strip_suffix('\\') {
                    pending.push_str(continued);
                    continue;
                }
                let whole = std::mem::take(&mut pending) + line;
                let Some(words) = shlex::split(&without_substitutions(whole.trim().trim_start_matches("$ "))) else {
                    continue;
                };
                // Up to a comment or the end of the first command.
                let words: Vec<String> = words
                    .into_iter()
                    .take_while(|word| !["#", "|", "&&", "||", ";", "&", "<", ">"].contains(&word.as_str()))
                    .collect();
                let mut words = words.as_slice();
                while let Some((first, rest)) = words.split_first() {
                    let assignment =
                        first.contains('=') && first.chars().next().is_some_and(|c| c.is_ascii_uppercase());
                    if assignment || first == "sudo" {
                        words = rest;
                    } else {
                        break;
                    }
                }
                let arguments = match words {
                    [first, rest @ ..] if first == "hookline" => rest,
                    [cargo, run, release, dashes, rest @ ..]
                        if [cargo, run, release, dashes].map(String::as_str) == ["cargo", "run", "--release", "--"] =>
                    {
                        rest
                    }
                    _ => continue,
                };
                let mut command = vec!["hookline".to_owned()];
                command.extend(arguments.iter().cloned());
                commands.push((format!("{name}:{}", number + 1), command));
            }
        }
        commands
    }

    /// `line` with each `$(…)` made one word, as the shell would make it one value.
    fn without_substitutions(line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(start) = rest.find("$(") {
            out.push_str(&rest[..start]);
            out.push_str("SUBSTITUTED");
            rest = rest[start..].find(')').map_or("", |end| &rest[start + end + 1..]);
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn every_hookline_command_in_the_docs_parses() {
        let commands = documented_commands();
        assert!(commands.len() >= 20, "found only {} commands: {commands:?}", commands.len());
        let mut failures = Vec::new();
        for (place, command) in &commands {
            match Args::try_parse_from(command) {
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                    ) => {}
                Err(error) => failures.push(format!("{place}: {}\n{error}", command.join(" "))),
            }
        }
        assert!(failures.is_empty(), "commands in the docs that hookline does not take:\n{}", failures.join("\n"));
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn a_command_the_parser_refuses_is_caught() {
        assert!(Args::try_parse_from(["hookline", "store", "backup"]).is_err());
        assert!(Args::try_parse_from(["hookline", "serve", "--lisen", "x"]).is_err());
        assert!(Args::try_parse_from(["hookline", "serve", "--listen", "x", "--role", "api"]).is_ok());
    }
}
