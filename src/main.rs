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
