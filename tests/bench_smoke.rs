//! Smoke test of the benchmark program (issue 5): a `--quick` run of a few scenarios, twice
//! each, a few hundred messages each, must pass its own checks and print the table. Benchmarks proper are
//! not part of CI; see BENCHMARKS.md.

use std::path::Path;
use std::process::Command;

#[test]
fn quick_bench_run_passes_its_checks_and_prints_the_table() {
    let plantilla = Path::new(env!("CARGO_BIN_EXE_plantilla"));
    let fake = Path::new(env!("CARGO_BIN_EXE_fake-graph"));
    let bin_dir = plantilla.parent().expect("binary directory");
    assert_eq!(
        fake.parent(),
        Some(bin_dir),
        "plantilla and fake-graph are built in the same directory"
    );
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
    assert!(!stdout.contains("FAILED"), "{stdout}");
}
