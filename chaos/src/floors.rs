//! The floors a run must reach for "no violation" to mean something. An audit of a run in
//! which no fault fired, every command timed out or every read was refused finds nothing
//! wrong — and has tested nothing. So a run must also show, printed and enforced (each miss
//! is a violation, so `chaos` exits 1):
//!
//! - every enabled kind of fault injected at least N times (`--faults-min-per-kind`), and no
//!   kill that killed nothing (a process already gone is not a fault injected);
//! - at least M acknowledged (2xx) operations, and at most a small share indeterminate;
//! - at least K good reads of each kind (query API, journal);
//! - no service, server or node that exited on its own: the system must ride out its
//!   dependencies' outages, so an exit is a finding, not a footnote.
//!
//! The floors scale with the run's duration and are set far below what runs measure (see
//! each constant), so that only a run that really went wrong misses them.

use crate::Report;
use crate::audit::Violations;
use crate::nemesis::Fault;

/// Acknowledged operations per second of the run's duration. Measured here (2 shared cores,
/// debug binaries): ~95/s on a single server (2,924 in 30 s; 45,394 in 300 s) and ~110/s on
/// the cluster (4,917 in 45 s; 50,038 in 300 s). A tenth of that still leaves room for a
/// machine busy with other work, and fails a run whose commands mostly went unanswered.
const ACKNOWLEDGED_PER_S_MIN: u64 = 10;

/// Good reads of each kind per second of the run's duration. Measured: ~25/s through the
/// query API and ~35/s from the journal on a single server (769 and 1,039 in 30 s); ~30 and
/// ~22/s on the cluster. One per second fails a run whose readers were refused throughout.
const GOOD_READS_PER_S_MIN: u64 = 1;

/// Most indeterminate operations on a single server, in per mille of all operations. One
/// transfer in four is sent once without a key (`workload::client`), so a fault that eats its
/// answer leaves it indeterminate; keyed ones are retried to a definite answer. Measured:
/// see `docs/reliability.md` (under 2 %); 10 % fails a run in which the command API was
/// unreachable for a large part of it.
const INDETERMINATE_PER_MILLE_MAX_SINGLE: u64 = 100;

/// The same on a cluster, where a leader's death or a partition also leaves the keyless
/// transfers in flight without an answer, and elections take 4–9 s. Measured: 1.4 % (1,270
/// of 89,047, 300 s) and 1.7 % (148 of 8,608, quick); 15 % leaves room for a run whose
/// faults happen to hit the leader more often.
const INDETERMINATE_PER_MILLE_MAX_CLUSTER: u64 = 150;

/// Injections of each enabled kind by default: one in the 30–45 s quick run (which goes on
/// until each kind was tried once), two in longer runs, so that a kind is seen to recover
/// more than once.
const FAULTS_PER_KIND_QUICK: u64 = 1;
const FAULTS_PER_KIND_LONG: u64 = 2;

/// What a run must reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Floors {
    pub faults_per_kind: u64,
    pub acknowledged_min: u64,
    pub indeterminate_per_mille_max: u64,
    pub good_reads_min: u64,
}

impl Floors {
    /// The floors of a run of `duration_s` seconds; `faults_per_kind` overrides the default.
    pub fn for_run(
        quick: bool,
        cluster: bool,
        duration_s: u64,
        faults_per_kind: Option<u64>,
    ) -> Self {
        Floors {
            faults_per_kind: faults_per_kind.unwrap_or(if quick {
                FAULTS_PER_KIND_QUICK
            } else {
                FAULTS_PER_KIND_LONG
            }),
            acknowledged_min: ACKNOWLEDGED_PER_S_MIN * duration_s,
            indeterminate_per_mille_max: if cluster {
                INDETERMINATE_PER_MILLE_MAX_CLUSTER
            } else {
                INDETERMINATE_PER_MILLE_MAX_SINGLE
            },
            good_reads_min: GOOD_READS_PER_S_MIN * duration_s,
        }
    }

    /// Adds a violation for each floor `report` misses, for each kill that killed nothing and
    /// for each service that exited on its own.
    pub fn enforce(&self, enabled: &[Fault], report: &Report, violations: &mut Violations) {
        for fault in enabled {
            let injected = report.faults.injected.get(fault).copied().unwrap_or(0);
            if injected == 0 {
                violations.add(
                    "fault_not_injected",
                    format!("{fault} was enabled but never injected"),
                );
            } else if injected < self.faults_per_kind {
                violations.add(
                    "floor_faults",
                    format!(
                        "{fault} injected {injected} times, the floor is {}",
                        self.faults_per_kind
                    ),
                );
            }
        }
        for evidence in &report.faults.kill_failed {
            violations.add("kill_failed", evidence.clone());
        }
        for (service, exits) in &report.faults.unplanned_exits {
            violations.add(
                "exited_on_its_own",
                format!("{service} exited on its own {exits} times (restarted)"),
            );
        }
        if (report.ok as u64) < self.acknowledged_min {
            violations.add(
                "floor_acknowledged",
                format!(
                    "{} acknowledged operations, the floor is {}",
                    report.ok, self.acknowledged_min
                ),
            );
        }
        if per_mille(report.indeterminate, report.operations) > self.indeterminate_per_mille_max {
            violations.add(
                "floor_indeterminate",
                format!(
                    "{} of {} operations indeterminate, more than {} ‰",
                    report.indeterminate, report.operations, self.indeterminate_per_mille_max
                ),
            );
        }
        for (kind, (good, _)) in [
            ("query API", report.query_reads),
            ("journal", report.journal_reads),
        ] {
            if good < self.good_reads_min {
                violations.add(
                    "floor_reads",
                    format!(
                        "{good} good reads through the {kind}, the floor is {}",
                        self.good_reads_min
                    ),
                );
            }
        }
    }

    /// One line: each floor and what the run reached.
    pub fn describe(&self, enabled: &[Fault], report: &Report) -> String {
        let fewest = enabled
            .iter()
            .map(|f| (report.faults.injected.get(f).copied().unwrap_or(0), f))
            .min();
        format!(
            "floors: each fault kind ≥ {} ({}), acknowledged ≥ {} ({}), indeterminate ≤ {} ‰ \
             ({} ‰), good reads ≥ {} each (query API {}, journal {}), kills that killed \
             nothing 0 ({}), exits on their own 0 ({})",
            self.faults_per_kind,
            fewest.map_or_else(
                || "no faults".to_owned(),
                |(n, f)| format!("fewest: {f} {n}")
            ),
            self.acknowledged_min,
            report.ok,
            self.indeterminate_per_mille_max,
            per_mille(report.indeterminate, report.operations),
            self.good_reads_min,
            report.query_reads.0,
            report.journal_reads.0,
            report.faults.kill_failed.len(),
            report.faults.unplanned_exits.values().sum::<u64>(),
        )
    }
}

/// `part` of `whole` in per mille, rounded up (so that any excess shows); 0 of nothing.
fn per_mille(part: usize, whole: usize) -> u64 {
    if whole == 0 {
        return 0;
    }
    (part as u64 * 1000).div_ceil(whole as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOORS: Floors = Floors {
        faults_per_kind: 2,
        acknowledged_min: 100,
        indeterminate_per_mille_max: 100,
        good_reads_min: 10,
    };

    /// A run that meets every floor of [`FLOORS`] with the faults `[Projector, Nats]`.
    fn good_run() -> Report {
        let mut report = Report {
            operations: 200,
            ok: 150,
            indeterminate: 10,
            query_reads: (50, 3),
            journal_reads: (40, 0),
            ..Report::default()
        };
        report.faults.injected.insert(Fault::Projector, 2);
        report.faults.injected.insert(Fault::Nats, 3);
        report
    }

    fn kinds(report: &Report) -> Vec<&'static str> {
        let mut violations = Violations::default();
        FLOORS.enforce(&[Fault::Projector, Fault::Nats], report, &mut violations);
        violations.0.keys().copied().collect()
    }

    #[test]
    fn a_run_that_meets_every_floor_has_no_violation() {
        assert!(kinds(&good_run()).is_empty());
        let line = FLOORS.describe(&[Fault::Projector, Fault::Nats], &good_run());
        assert!(line.contains("fewest: projector 2"), "{line}");
    }

    #[test]
    fn a_kind_injected_too_rarely_or_never_misses_the_fault_floor() {
        let mut report = good_run();
        report.faults.injected.insert(Fault::Nats, 1);
        assert_eq!(kinds(&report), ["floor_faults"]);
        report.faults.injected.remove(&Fault::Nats);
        assert_eq!(kinds(&report), ["fault_not_injected"]);
    }

    #[test]
    fn a_kill_that_killed_nothing_is_a_violation() {
        let mut report = good_run();
        report
            .faults
            .kill_failed
            .push("nats: pid 7 had already exited".into());
        assert_eq!(kinds(&report), ["kill_failed"]);
    }

    #[test]
    fn a_service_that_exits_on_its_own_is_a_violation() {
        let mut report = good_run();
        report.faults.unplanned_exits.insert("projector", 1);
        assert_eq!(kinds(&report), ["exited_on_its_own"]);
    }

    #[test]
    fn too_few_acknowledged_operations_miss_the_floor() {
        let report = Report {
            ok: 99,
            ..good_run()
        };
        assert_eq!(kinds(&report), ["floor_acknowledged"]);
    }

    #[test]
    fn too_many_indeterminate_operations_miss_the_floor() {
        // 20 of 200 is exactly 100 ‰: allowed; 21 is not.
        let report = Report {
            indeterminate: 20,
            ..good_run()
        };
        assert!(kinds(&report).is_empty());
        let report = Report {
            indeterminate: 21,
            ..good_run()
        };
        assert_eq!(kinds(&report), ["floor_indeterminate"]);
    }

    #[test]
    fn every_read_unavailable_misses_the_read_floor() {
        let report = Report {
            journal_reads: (0, 500),
            ..good_run()
        };
        assert_eq!(kinds(&report), ["floor_reads"]);
    }

    #[test]
    fn nothing_at_all_misses_every_floor() {
        let mut violations = Violations::default();
        FLOORS.enforce(&[Fault::Projector], &Report::default(), &mut violations);
        let kinds: Vec<_> = violations.0.keys().copied().collect();
        assert_eq!(
            kinds,
            ["fault_not_injected", "floor_acknowledged", "floor_reads"]
        );
    }

    #[test]
    fn floors_scale_with_the_run_and_its_mode() {
        let quick = Floors::for_run(true, false, 30, None);
        assert_eq!((quick.faults_per_kind, quick.acknowledged_min), (1, 300));
        let long = Floors::for_run(false, true, 300, None);
        assert_eq!((long.faults_per_kind, long.good_reads_min), (2, 300));
        assert!(long.indeterminate_per_mille_max > quick.indeterminate_per_mille_max);
        assert_eq!(Floors::for_run(true, false, 30, Some(3)).faults_per_kind, 3);
    }
}
