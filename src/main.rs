use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = plantilla::cli::Cli::parse();
    if let Err(e) = plantilla::cli::main(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
