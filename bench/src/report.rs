//! The results: one row per figure, printed as a table and written as JSON.

use serde_json::{Value, json};

/// The figures that count work done: a scenario that reports one of them as zero did nothing
/// (every command failed, nothing was served) and its other figures mean nothing.
const WORK_DONE: [&str; 7] = [
    "committed transfers/s",
    "orders paid/s end to end",
    "events received",
    "items/s end to end",
    "served req/s",
    "probe deposits accepted",
    "rebuild rate",
];

/// Figures that must be zero: acknowledged writes that went missing.
const MUST_BE_ZERO: [&str; 1] = ["accepted writes lost"];

#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<(String, String, f64, String)>,
}

impl Report {
    /// Records `value` (in `unit`) for `scenario` / `metric`.
    pub fn add(&mut self, scenario: &str, metric: &str, value: f64, unit: &str) {
        self.rows.push((
            scenario.to_owned(),
            metric.to_owned(),
            value,
            unit.to_owned(),
        ));
    }

    /// Records a duration, in milliseconds.
    pub fn add_ms(&mut self, scenario: &str, metric: &str, elapsed: std::time::Duration) {
        self.add(scenario, metric, elapsed.as_secs_f64() * 1e3, "ms");
    }

    /// Records a rate: `count` over `elapsed`, per second.
    pub fn add_rate(
        &mut self,
        scenario: &str,
        metric: &str,
        count: usize,
        elapsed: std::time::Duration,
        unit: &str,
    ) {
        self.add(scenario, metric, count as f64 / elapsed.as_secs_f64(), unit);
    }

    pub fn get(&self, scenario: &str, metric: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|(s, m, _, _)| s == scenario && m == metric)
            .map(|(_, _, v, _)| *v)
    }

    /// Why the run does not count, one line per scenario that did no work or lost a write;
    /// empty when it counts.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (scenario, metric, value, _) in &self.rows {
            let work = WORK_DONE.contains(&metric.as_str());
            // NaN (a rate over no time) is no work either.
            if work && (value.is_nan() || *value <= 0.0) {
                problems.push(format!("{scenario}: {metric} is {value}: it did nothing"));
            }
            if MUST_BE_ZERO.contains(&metric.as_str()) && *value != 0.0 {
                problems.push(format!("{scenario}: {metric} is {value}"));
            }
        }
        problems
    }

    pub fn print(&self) {
        println!(
            "\n{:<36} {:<34} {:>14}  unit",
            "scenario", "metric", "value"
        );
        println!("{}", "-".repeat(96));
        for (scenario, metric, value, unit) in &self.rows {
            if unit == "ratio" {
                println!("{scenario:<36} {metric:<34} {value:>14.3}  {unit}");
            } else {
                println!("{scenario:<36} {metric:<34} {value:>14.1}  {unit}");
            }
        }
    }

    pub fn write_json(&self, path: &std::path::Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|(s, m, v, u)| json!({"scenario": s, "metric": m, "value": v, "unit": u}))
            .collect();
        std::fs::write(path, serde_json::to_vec_pretty(&json!({"results": rows}))?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Report;

    #[test]
    fn a_scenario_that_committed_nothing_is_a_problem() {
        let mut report = Report::default();
        report.add(
            "transfers uniform",
            "committed transfers/s",
            812.0,
            "transfers/s",
        );
        report.add("transfers uniform", "latency p99", 0.0, "ms");
        assert!(report.problems().is_empty());
        report.add(
            "transfers hot (10 accounts)",
            "committed transfers/s",
            0.0,
            "transfers/s",
        );
        report.add("replay", "rebuild rate", f64::NAN, "events/s");
        let problems = report.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("transfers hot"), "{problems:?}");
    }

    #[test]
    fn a_lost_acknowledged_write_is_a_problem() {
        let mut report = Report::default();
        report.add(
            "cluster: recovery",
            "accepted writes lost",
            1.0,
            "(target 0)",
        );
        assert_eq!(report.problems().len(), 1);
    }
}
