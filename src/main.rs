use clap::Parser;

/// mimalloc instead of glibc's malloc: a full-cycle message allocates and frees hundreds of
/// small blocks (rows, JSON, HTTP buffers) across threads, and glibc's `malloc`, `free` and
/// their consolidation of freed chunks were 16 % of plantilla's CPU in the profile (issue 13).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
