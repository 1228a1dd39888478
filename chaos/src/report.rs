//! What a run found, and how it is printed.

use crate::audit::Violations;
use crate::floors::Floors;
use crate::nemesis::{Fault, FaultCounts};
use std::collections::BTreeMap;

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub operations: usize,
    pub ok: usize,
    pub replayed: usize,
    pub failed: BTreeMap<String, usize>,
    pub indeterminate: usize,
    pub indeterminate_applied: usize,
    pub attempts: u64,
    pub query_reads: (u64, u64),
    pub journal_reads: (u64, u64),
    pub faults: FaultCounts,
    pub journal_messages: usize,
    /// Batches the writers checked by the stream's last sequence (see `JournalFacts`).
    pub stream_checked_batches: usize,
    /// What each power cut rolled back, as the lazy filesystem said it.
    pub power_cuts: Vec<String>,
    pub violations: Violations,
    /// What the run had to reach, and the fault kinds it had to inject.
    pub floors: Floors,
    pub enabled: Vec<Fault>,
}

impl Report {
    /// Prints the figures and every violation kind with its first pieces of evidence.
    pub fn print(&self) {
        let failed: usize = self.failed.values().sum();
        let reasons: Vec<String> = self
            .failed
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        println!(
            "operations: {} (ok {} [{} replayed], failed-definite {} [{}], indeterminate {} \
             [{} applied]); {} attempts",
            self.operations,
            self.ok,
            self.replayed,
            failed,
            reasons.join(", "),
            self.indeterminate,
            self.indeterminate_applied,
            self.attempts
        );
        println!(
            "reads: query API {} ok, {} unavailable; journal {} ok, {} unavailable; \
             the journal holds {} messages, {} batches checked by the stream's last sequence",
            self.query_reads.0,
            self.query_reads.1,
            self.journal_reads.0,
            self.journal_reads.1,
            self.journal_messages,
            self.stream_checked_batches
        );
        let kinds: Vec<String> = self
            .faults
            .injected
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect();
        let exits: Vec<String> = self
            .faults
            .unplanned_exits
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let node_faults = if self.faults.on_leader + self.faults.on_follower > 0 {
            format!(
                "; node faults on the leader {}, on a follower {}, leader moved {} times",
                self.faults.on_leader, self.faults.on_follower, self.faults.leader_changes
            )
        } else {
            String::new()
        };
        println!(
            "faults: {} ({}){node_faults}; services that exited on their own: {}; kills that \
             killed nothing: {}",
            self.faults.total(),
            kinds.join(", "),
            if exits.is_empty() {
                "none".to_owned()
            } else {
                exits.join(", ")
            },
            self.faults.kill_failed.len()
        );
        if !self.power_cuts.is_empty() {
            // Evidence that the cuts dropped unsynced data at all: a cut that rolls nothing
            // back tests nothing.
            let rolled_back = self
                .power_cuts
                .iter()
                .filter(|cut| !(cut.contains(": 0 files back") && cut.contains(", 0 directory")))
                .count();
            println!(
                "power cuts: {} of {} rolled unsynced files or names back; last: {}",
                rolled_back,
                self.power_cuts.len(),
                self.power_cuts.last().map_or("", String::as_str)
            );
        }
        println!("{}", self.floors.describe(&self.enabled, self));
        let by_kind: Vec<String> = self
            .violations
            .0
            .iter()
            .map(|(k, v)| format!("{k} {}", v.len()))
            .collect();
        println!(
            "violations: {}{}",
            self.violations.total(),
            if by_kind.is_empty() {
                String::new()
            } else {
                format!(" ({})", by_kind.join(", "))
            }
        );
        for (kind, evidence) in &self.violations.0 {
            for line in evidence.iter().take(5) {
                println!("  {kind}: {line}");
            }
            if evidence.len() > 5 {
                println!("  {kind}: … and {} more", evidence.len() - 5);
            }
        }
    }
}
