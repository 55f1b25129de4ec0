//! `imagebuilder-exporter`: see the README and docs/, or `--help`.

use std::process::ExitCode;
use std::sync::Arc;

use imagebuilder_exporter::app;
use imagebuilder_exporter::app::options::Cli;
use imagebuilder_exporter::base::allocator;
use imagebuilder_exporter::base::clock::SystemClock;
use imagebuilder_exporter::base::logging;

#[tokio::main]
async fn main() -> ExitCode {
    allocator::tune();
    let (cli, opts) = match Cli::try_parse_args(std::env::args_os()) {
        Ok(x) => x,
        Err(e) => {
            // Prints help/version to stdout, errors to stderr.
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    logging::init(cli.log_level, cli.log_format);

    let listener = match tokio::net::TcpListener::bind(opts.listen_address).await {
        Ok(l) => l,
        Err(e) => {
            // Usually the port is taken: say which flag chooses another.
            tracing::error!(address = %opts.listen_address, error = %e, "cannot listen: choose another address with --web.listen-address, or stop what holds this one");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        version = imagebuilder_exporter::base::version::VERSION,
        revision = imagebuilder_exporter::base::version::REVISION,
        build_date = imagebuilder_exporter::base::version::BUILD_DATE,
        address = %opts.listen_address,
        telemetry_path = %opts.web.telemetry_path,
        demo = opts.demo,
        "starting imagebuilder-exporter"
    );
    match app::run(opts, listener, Arc::new(SystemClock), shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
