//! The results: one row per figure, printed as a table and written as JSON.

use serde_json::{Value, json};

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

    pub fn get(&self, scenario: &str, metric: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|(s, m, _, _)| s == scenario && m == metric)
            .map(|(_, _, v, _)| *v)
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
