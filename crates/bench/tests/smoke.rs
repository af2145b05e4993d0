//! Smoke test of the benchmark program (issue 5): a `--quick` run of a few scenarios, twice
//! each, a few hundred messages each, must pass its own checks and print the table. Benchmarks proper are
//! not part of CI; see BENCHMARKS.md.

use std::path::Path;
use std::process::Command;

#[test]
fn quick_bench_run_passes_its_checks_and_prints_the_table() {
    // `cargo test --workspace` builds every binary of the workspace before it runs a test,
    // into one directory: the bench's own, where the bench looks for the other two.
    let bench = Path::new(env!("CARGO_BIN_EXE_plantilla-bench"));
    let bin_dir = bench.parent().expect("binary directory");
    for exe in ["plantilla", "fake-graph"] {
        assert!(
            bin_dir.join(exe).is_file(),
            "{exe} is not built beside plantilla-bench in {}: run `cargo test --workspace`",
            bin_dir.display()
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_plantilla-bench"))
        .arg("--quick")
        .args(["--repeat", "2"])
        .arg("--bin-dir")
        .arg(bin_dir)
        .args(["baseline", "pending", "full-cycle"])
        .output()
        .expect("running plantilla-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "plantilla-bench failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for needle in [
        "| scenario ",
        "| baseline ",
        "| pending ",
        "| full-cycle ",
        "- pending: 2 runs, ",
        "All checks passed.",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    // Issue 13's targets: one a line, those of the scenarios not run said so.
    let target = |start: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no target line {start:?} in:\n{stdout}"))
    };
    assert!(target("| webhooks ≥ 12,000 req/s ").ends_with(" not run |"));
    let cpu = target("| plantilla CPU per full-cycle message ≤ 300 µs on SQLite ");
    assert!(cpu.contains(" µs"), "{cpu}");
    assert!(!cpu.contains("not run"), "{cpu}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
}
