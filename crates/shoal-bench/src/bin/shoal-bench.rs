//! Standalone `shoal-bench` binary: the same flags as `shoal bench`, for benchmarking any
//! DynamoDB-compatible endpoint without building the server.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "shoal-bench",
    version,
    about = "Load generator for DynamoDB-compatible endpoints"
)]
struct Cli {
    #[command(flatten)]
    bench: shoal_bench::BenchArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match shoal_bench::run(cli.bench).await {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
