use clap::Parser;

#[tokio::main]
async fn main() {
    // Before anything opens a database (nothing has yet).
    plantilla::store::sqlite_without_memory_statistics();
    let cli = plantilla::cli::Cli::parse();
    if let Err(e) = plantilla::cli::main(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
