//! The balance-over-time chart: inline SVG drawn on the server from the account's history, so
//! it needs no script and no chart library. Integer arithmetic throughout (money is never a
//! float, and neither are the pixels it becomes).

use maud::{Markup, html};

/// The drawing's own coordinate space; the SVG scales to its container's width.
const WIDTH: i128 = 600;
const HEIGHT: i128 = 160;
/// Room for the axis labels.
const PAD: i128 = 8;

/// `balances`: the balance after each entry, oldest first.
pub fn balance_chart(balances: &[i64], currency: &str) -> Markup {
    let (Some(first), Some(last)) = (balances.first(), balances.last()) else {
        return html! { p.muted { "No history yet." } };
    };
    let min = balances.iter().copied().min().unwrap_or(0).min(0);
    let max = balances.iter().copied().max().unwrap_or(0).max(1);
    let points = polyline(balances, min, max);
    let label = format!(
        "Balance over the last {} entries: from {first} to {last} {currency} (lowest {min}, highest {max})",
        balances.len()
    );
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(label) preserveAspectRatio="none" {
            title { (label) }
            line.axis x1=(PAD) y1=(y_of(0, min, max)) x2=(WIDTH - PAD) y2=(y_of(0, min, max)) {}
            polyline.line points=(points) fill="none" {}
        }
        p.chart-legend { "highest " (max) " · lowest " (min) " · now " (last) " " (currency) }
    }
}

fn polyline(balances: &[i64], min: i64, max: i64) -> String {
    let n = i128::try_from(balances.len()).unwrap_or(1);
    let span_x = WIDTH - 2 * PAD;
    balances
        .iter()
        .enumerate()
        .map(|(i, &balance)| {
            let i = i128::try_from(i).unwrap_or(0);
            // One entry: a flat line across the whole chart.
            let x = if n <= 1 {
                PAD
            } else {
                PAD + i * span_x / (n - 1)
            };
            format!("{x},{}", y_of(balance, min, max))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The pixel row of a balance: `max` at the top, `min` at the bottom.
fn y_of(balance: i64, min: i64, max: i64) -> i128 {
    let span = (i128::from(max) - i128::from(min)).max(1);
    let from_top = (i128::from(max) - i128::from(balance)) * (HEIGHT - 2 * PAD) / span;
    PAD + from_top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_balance_is_drawn_at_the_top_and_zero_at_the_bottom() {
        assert_eq!(polyline(&[0, 50, 100], 0, 100), "8,152 300,80 592,8");
    }

    #[test]
    fn the_chart_names_its_figures_for_screen_readers() {
        let svg = balance_chart(&[100, 40], "USD").into_string();
        assert!(svg.contains("from 100 to 40 USD"), "{svg}");
        assert!(svg.contains("role=\"img\""));
        let empty = balance_chart(&[], "USD").into_string();
        assert!(empty.contains("No history yet"));
    }
}
