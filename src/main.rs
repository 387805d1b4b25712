//! The `s3warden` command line: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use s3warden::config::Config;
use s3warden::server::Server;

#[derive(Parser)]
#[command(
    name = "s3warden",
    version,
    about = "An S3-compatible reverse proxy that enforces access"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Temporary credentials: revoke sessions, rotate the session key.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Revoke every session of a user or role issued before now, through the
    /// running s3warden (signed with the config's root key).
    Revoke {
        #[arg(long, short)]
        config: PathBuf,
        /// The IAM user whose sessions end (GetFederationToken, GetSessionToken).
        #[arg(long, conflicts_with = "role", required_unless_present = "role")]
        user: Option<String>,
        /// The role whose sessions end (AssumeRole).
        #[arg(long)]
        role: Option<String>,
    },
    /// Append a fresh key to the session key file: it seals new tokens after
    /// the next restart, while older keys still open the tokens they sealed.
    RotateKey {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "s3warden=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Sessions { command } => sessions(command),
    }
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("s3warden: {e}");
        ExitCode::from(2)
    })
}

fn sessions(command: SessionsCommand) -> ExitCode {
    match command {
        SessionsCommand::Revoke { config, user, role } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("s3warden: cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match runtime.block_on(s3warden::api::client::revoke_sessions(
                &config,
                user.as_deref(),
                role.as_deref(),
            )) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("s3warden: {e}");
                    ExitCode::from(1)
                }
            }
        }
        SessionsCommand::RotateKey { config } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match s3warden::identity::sessions::rotate_key_file(&config.sessions.key_file) {
                Ok(id) => {
                    println!(
                        "key {id} appended to {}; it seals new session tokens once s3warden restarts",
                        config.sessions.key_file.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("s3warden: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn serve(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("s3warden: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("s3warden: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let embedded = config.is_embedded();
        let root = config.root.clone();
        let region = config.region.clone();
        let server = match Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("s3warden: {e}");
                return ExitCode::from(1);
            }
        };
        let signals = shutdown_signal();
        println!(
            "s3warden listening on {} (region {region})",
            server.endpoint()
        );
        if embedded {
            // Development mode: the credentials are in the config file anyway;
            // printing them lets a newcomer copy them straight into aws-cli.
            println!("upstream: embedded store (development)");
            println!("  export AWS_ACCESS_KEY_ID={}", root.access_key_id);
            println!("  export AWS_SECRET_ACCESS_KEY={}", root.secret_access_key);
            println!("  export AWS_DEFAULT_REGION={region}");
            println!("  aws --endpoint-url {} s3 ls", server.endpoint());
        }
        signals.await;
        tracing::info!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Registers for SIGTERM (and Ctrl-C) at once, so that a signal sent as soon
/// as the endpoint is printed is not lost to the default action; the
/// returned future completes when one arrives.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).ok()
    };
    async move {
        #[cfg(unix)]
        {
            if let Some(mut term) = term {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
