//! Issue 13's targets ("Targets" in the issue), checked against the figures of each
//! scenario's row: the median run with `--repeat`, the one the table shows. They are
//! reported as met, not met (a figure missed, or the scenario's checks failed in any run),
//! not run (the scenario was not asked for) or not measured (it ran but a figure is missing,
//! e.g. PostgreSQL's CPU when the server runs elsewhere), and do not change the exit status.

use crate::Row;

/// A figure a scenario measures, beyond the table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    /// The row's rate (the table's ops/s).
    Rate,
    /// The row's p99 latency, ms.
    P99Ms,
    /// plantilla's peak RSS during the scenario, MB.
    PeakRssMb,
    /// plantilla's CPU per message, µs.
    PlantillaCpuUs,
    /// The local PostgreSQL server's CPU per message, µs.
    PostgresCpuUs,
    /// Messages not `read` when the run ended.
    Unread,
    /// 1 when plantilla's SQLite ran with `synchronous=full`, 0 otherwise.
    SynchronousFull,
    /// The slowest and the fastest channel's average rate, per second.
    SlowestChannel,
    FastestChannel,
    /// The most sends of one channel in one second, and what its limit + burst allow.
    BusiestWindow,
    WindowLimit,
}

/// What a figure must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    AtMost(f64),
    AtLeast(f64),
    /// Within `fraction` of `value`, either side.
    Within {
        value: f64,
        fraction: f64,
    },
    /// At most another figure of the same row.
    AtMostFigure(Figure),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    pub figure: Figure,
    pub bound: Bound,
}

/// One target: every check on the scenario's row must hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub scenario: &'static str,
    pub what: &'static str,
    pub checks: &'static [Check],
}

const fn check(figure: Figure, bound: Bound) -> Check {
    Check { figure, bound }
}

use Bound::*;
use Figure::*;

/// Issue 13's targets, a row for each (plantilla's CPU per message is one for each
/// database).
pub const ISSUE_13: &[Target] = &[
    Target {
        scenario: "full-cycle",
        what: "plantilla CPU per full-cycle message ≤ 300 µs on SQLite",
        checks: &[check(PlantillaCpuUs, AtMost(300.0))],
    },
    Target {
        scenario: "full-cycle-pg",
        what: "plantilla CPU per full-cycle message ≤ 400 µs on PostgreSQL",
        checks: &[check(PlantillaCpuUs, AtMost(400.0))],
    },
    Target {
        scenario: "full-cycle-pg",
        what: "PostgreSQL server CPU per full-cycle message ≤ 400 µs",
        checks: &[check(PostgresCpuUs, AtMost(400.0))],
    },
    Target {
        scenario: "full-cycle",
        what: "full-cycle SQLite ≥ 3,000 msg/s, every message read",
        checks: &[check(Rate, AtLeast(3000.0)), check(Unread, AtMost(0.0))],
    },
    Target {
        scenario: "full-cycle-pg",
        what: "full-cycle PostgreSQL ≥ 2,000 msg/s",
        checks: &[check(Rate, AtLeast(2000.0))],
    },
    Target {
        scenario: "accept",
        what: "accept ≥ 12,000 req/s, p99 ≤ 10 ms, synchronous=full kept",
        checks: &[
            check(Rate, AtLeast(12_000.0)),
            check(P99Ms, AtMost(10.0)),
            check(SynchronousFull, AtLeast(1.0)),
        ],
    },
    Target {
        scenario: "webhooks",
        what: "webhooks ≥ 12,000 req/s",
        checks: &[check(Rate, AtLeast(12_000.0))],
    },
    Target {
        scenario: "rate-100x80",
        what: "rate-100x80: every channel within 2 % of 80/s; no 1-s window above limit + burst; \
               peak RSS ≤ 150 MB",
        checks: &[
            check(
                SlowestChannel,
                Within {
                    value: 80.0,
                    fraction: 0.02,
                },
            ),
            check(
                FastestChannel,
                Within {
                    value: 80.0,
                    fraction: 0.02,
                },
            ),
            check(BusiestWindow, AtMostFigure(WindowLimit)),
            check(PeakRssMb, AtMost(150.0)),
        ],
    },
    Target {
        scenario: "rate-1000",
        what: "rate-1000 within 2 % of 1,000/s",
        checks: &[check(
            Rate,
            Within {
                value: 1000.0,
                fraction: 0.02,
            },
        )],
    },
];

/// How a target came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Met,
    NotMet,
    NotRun,
    /// The scenario ran, a figure the target needs is missing.
    NotMeasured,
}

impl Outcome {
    pub fn text(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::NotMet => "NOT met",
            Outcome::NotRun => "not run",
            Outcome::NotMeasured => "not measured",
        }
    }
}

/// A target checked against the rows: the outcome and the figures it was checked on (each
/// check that failed marked ✗).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub target: &'static Target,
    pub outcome: Outcome,
    pub measured: String,
}

pub fn value(row: &Row, figure: Figure) -> Option<f64> {
    match figure {
        Rate => row.ops,
        P99Ms => row.p99,
        PeakRssMb => row.peak_rss_mb,
        other => row.figures.get(&other).copied(),
    }
}

/// What a figure is called when it is missing.
fn label(figure: Figure) -> &'static str {
    match figure {
        Rate => "rate",
        P99Ms => "p99",
        PeakRssMb => "peak RSS",
        PlantillaCpuUs => "plantilla CPU",
        PostgresCpuUs => "PostgreSQL CPU",
        Unread => "messages read",
        SynchronousFull => "synchronous",
        SlowestChannel => "slowest channel",
        FastestChannel => "fastest channel",
        BusiestWindow => "busiest 1-s window",
        WindowLimit => "limit + burst",
    }
}

fn show(row: &Row, figure: Figure, v: f64) -> String {
    match figure {
        Rate => format!("{} {}", thousands(v), row.unit),
        P99Ms => format!("p99 {v:.1} ms"),
        PeakRssMb => format!("peak RSS {v:.1} MB"),
        PlantillaCpuUs | PostgresCpuUs => format!("{v:.0} µs"),
        Unread => format!("{v:.0} not read"),
        SynchronousFull if v >= 1.0 => "synchronous=full".into(),
        SynchronousFull => "synchronous not full".into(),
        SlowestChannel => format!("slowest channel {v:.1}/s"),
        FastestChannel => format!("fastest {v:.1}/s"),
        BusiestWindow => match value(row, WindowLimit) {
            Some(limit) => format!("busiest 1-s window {v:.0} (limit + burst {limit:.0})"),
            None => format!("busiest 1-s window {v:.0}"),
        },
        WindowLimit => format!("limit + burst {v:.0}"),
    }
}

/// `v` rounded, with thousands separated by commas (12,345). Written here: ten lines for a
/// report, not worth a dependency.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < -0.5 { format!("-{out}") } else { out }
}

fn holds(row: &Row, check: &Check, v: f64) -> Option<bool> {
    Some(match check.bound {
        AtMost(most) => v <= most,
        AtLeast(least) => v >= least,
        Within { value, fraction } => (v - value).abs() <= fraction * value,
        AtMostFigure(other) => v <= value(row, other)?,
    })
}

/// Each target of `targets` against `rows` (a scenario's first row counts).
pub fn evaluate(targets: &'static [Target], rows: &[Row]) -> Vec<Evaluated> {
    targets
        .iter()
        .map(|target| {
            let Some(row) = rows.iter().find(|r| r.name == target.scenario) else {
                return Evaluated {
                    target,
                    outcome: Outcome::NotRun,
                    measured: "–".into(),
                };
            };
            let mut parts = Vec::new();
            let mut missing = false;
            let mut failed = false;
            for check in target.checks {
                match value(row, check.figure).map(|v| (v, holds(row, check, v))) {
                    Some((v, Some(ok))) => {
                        let shown = show(row, check.figure, v);
                        parts.push(if ok { shown } else { format!("{shown} ✗") });
                        failed |= !ok;
                    }
                    _ => {
                        missing = true;
                        parts.push(format!("{} not measured", label(check.figure)));
                    }
                }
            }
            // The issue's targets are for runs whose checks all pass: a rate reached while
            // messages went missing is no rate.
            if !row.failures.is_empty() {
                failed = true;
                parts.push("the scenario's checks failed ✗".into());
            }
            let outcome = if failed {
                Outcome::NotMet
            } else if missing {
                Outcome::NotMeasured
            } else {
                Outcome::Met
            };
            Evaluated {
                target,
                outcome,
                measured: parts.join("; "),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, unit: &'static str, ops: f64, figures: &[(Figure, f64)]) -> Row {
        let mut row = Row::new(name);
        row.unit = unit;
        row.ops = Some(ops);
        for &(figure, v) in figures {
            row.figure(figure, v);
        }
        row
    }

    fn outcome_of(evaluated: &[Evaluated], what: &str) -> (Outcome, String) {
        let e = evaluated
            .iter()
            .find(|e| e.target.what.starts_with(what))
            .unwrap_or_else(|| panic!("no target {what:?}"));
        (e.outcome, e.measured.clone())
    }

    #[test]
    fn every_target_names_a_scenario_the_bench_runs() {
        for t in ISSUE_13 {
            assert!(
                crate::scenarios::ALL.contains(&t.scenario),
                "{t:?} names no scenario"
            );
            assert!(!t.checks.is_empty(), "{t:?} checks nothing");
        }
        assert_eq!(ISSUE_13.len(), 9);
    }

    #[test]
    fn targets_are_met_not_met_not_run_or_not_measured_from_the_figures() {
        let mut accept = row("accept", "req/s", 12_500.0, &[(SynchronousFull, 1.0)]);
        accept.p99 = Some(9.5);
        let mut rate100 = row(
            "rate-100x80",
            "msg/s",
            7_900.0,
            &[
                (SlowestChannel, 78.5),
                (FastestChannel, 80.2),
                (BusiestWindow, 88.0),
                (WindowLimit, 88.0),
            ],
        );
        rate100.peak_rss_mb = Some(120.0);
        let rows = vec![
            row(
                "full-cycle",
                "msg/s",
                3_100.0,
                &[(PlantillaCpuUs, 301.0), (Unread, 0.0)],
            ),
            accept,
            row("webhooks", "req/s", 11_999.0, &[]),
            rate100,
            row("rate-1000", "msg/s", 1_019.9, &[]),
        ];
        let done = evaluate(ISSUE_13, &rows);
        assert_eq!(done.len(), ISSUE_13.len());

        // One over the bound is not met, and says which figure.
        assert_eq!(
            outcome_of(&done, "plantilla CPU per full-cycle message ≤ 300"),
            (Outcome::NotMet, "301 µs ✗".into())
        );
        assert_eq!(
            outcome_of(&done, "full-cycle SQLite"),
            (Outcome::Met, "3,100 msg/s; 0 not read".into())
        );
        assert_eq!(
            outcome_of(&done, "accept"),
            (
                Outcome::Met,
                "12,500 req/s; p99 9.5 ms; synchronous=full".into()
            )
        );
        assert_eq!(
            outcome_of(&done, "webhooks"),
            (Outcome::NotMet, "11,999 req/s ✗".into())
        );
        // A window at exactly limit + burst is within it; 78.5/s is 1.9 % under 80.
        assert_eq!(outcome_of(&done, "rate-100x80").0, Outcome::Met);
        // Just under 2 % over 1,000/s is within 2 %.
        assert_eq!(outcome_of(&done, "rate-1000").0, Outcome::Met);
        // No PostgreSQL run: all three of its targets.
        for what in [
            "plantilla CPU per full-cycle message ≤ 400",
            "PostgreSQL server CPU",
            "full-cycle PostgreSQL",
        ] {
            assert_eq!(outcome_of(&done, what), (Outcome::NotRun, "–".into()));
        }
    }

    #[test]
    fn one_failing_check_fails_the_target_and_a_missing_figure_is_not_a_pass() {
        let mut accept = row("accept", "req/s", 13_000.0, &[(SynchronousFull, 0.0)]);
        accept.p99 = Some(10.5);
        let mut rate100 = row(
            "rate-100x80",
            "msg/s",
            8_000.0,
            &[
                (SlowestChannel, 79.0),
                (FastestChannel, 81.7),
                (BusiestWindow, 89.0),
                (WindowLimit, 88.0),
            ],
        );
        rate100.peak_rss_mb = Some(150.0);
        let rows = vec![
            // Every message read is a figure of its own: fast is not enough.
            row(
                "full-cycle",
                "msg/s",
                5_000.0,
                &[(PlantillaCpuUs, 250.0), (Unread, 3.0)],
            ),
            accept,
            rate100,
            row("rate-1000", "msg/s", 979.0, &[]),
            // PostgreSQL's CPU is not visible (a server elsewhere).
            row(
                "full-cycle-pg",
                "msg/s",
                2_000.0,
                &[(PlantillaCpuUs, 380.0)],
            ),
        ];
        let done = evaluate(ISSUE_13, &rows);
        assert_eq!(
            outcome_of(&done, "plantilla CPU per full-cycle message ≤ 300"),
            (Outcome::Met, "250 µs".into())
        );
        assert_eq!(
            outcome_of(&done, "full-cycle SQLite"),
            (Outcome::NotMet, "5,000 msg/s; 3 not read ✗".into())
        );
        assert_eq!(
            outcome_of(&done, "accept"),
            (
                Outcome::NotMet,
                "13,000 req/s; p99 10.5 ms ✗; synchronous not full ✗".into()
            )
        );
        assert_eq!(
            outcome_of(&done, "rate-100x80"),
            (
                Outcome::NotMet,
                "slowest channel 79.0/s; fastest 81.7/s ✗; \
                 busiest 1-s window 89 (limit + burst 88) ✗; peak RSS 150.0 MB"
                    .into()
            )
        );
        assert_eq!(
            outcome_of(&done, "rate-1000"),
            (Outcome::NotMet, "979 msg/s ✗".into())
        );
        assert_eq!(outcome_of(&done, "webhooks").0, Outcome::NotRun);
        assert_eq!(
            outcome_of(&done, "plantilla CPU per full-cycle message ≤ 400"),
            (Outcome::Met, "380 µs".into())
        );
        assert_eq!(
            outcome_of(&done, "PostgreSQL server CPU"),
            (Outcome::NotMeasured, "PostgreSQL CPU not measured".into())
        );
        assert_eq!(outcome_of(&done, "full-cycle PostgreSQL").0, Outcome::Met);

        // Figures that meet it from a scenario whose checks failed (in any run) do not.
        let mut failed = row("webhooks", "req/s", 15_000.0, &[]);
        failed.fail("run 2: want 5000 messages read, database has read 4999".into());
        let done = evaluate(ISSUE_13, &[failed]);
        assert_eq!(
            outcome_of(&done, "webhooks"),
            (
                Outcome::NotMet,
                "15,000 req/s; the scenario's checks failed ✗".into()
            )
        );

        // A row without its rate (the run failed before it measured) is not measured, and a
        // failing figure beside a missing one still fails.
        let mut broken = row("accept", "req/s", 0.0, &[(SynchronousFull, 1.0)]);
        broken.ops = None;
        broken.p99 = Some(50.0);
        let done = evaluate(ISSUE_13, &[broken.clone()]);
        assert_eq!(outcome_of(&done, "accept").0, Outcome::NotMet);
        broken.p99 = Some(5.0);
        let done = evaluate(ISSUE_13, &[broken]);
        assert_eq!(outcome_of(&done, "accept").0, Outcome::NotMeasured);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(12_345.6), "12,346");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
