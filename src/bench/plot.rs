//! `chatd bench plot`: draws a fan-out sweep (the `--json` lines of `chatd bench fanout`)
//! as an SVG: delivery latency p50, p99 and p99.9 (ms) over the delivered rate
//! (deliveries/s). SVG only, so no font or bitmap library is needed.

use std::path::Path;

use plotters::prelude::*;

use super::load::LoadReport;
use super::{failed, BenchError, Result};

/// Reads the fan-out results of a `--json` output (one object per line; other scenarios'
/// lines are skipped).
pub fn read(input: &Path) -> Result<Vec<LoadReport>> {
    let text = std::fs::read_to_string(input)
        .map_err(|e| BenchError::Usage(format!("cannot read {}: {e}", input.display())))?;
    let mut points = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| BenchError::Usage(format!("{} line {}: not JSON: {e}", input.display(), n + 1)))?;
        if value["scenario"] != "fanout" {
            continue;
        }
        let report: LoadReport = serde_json::from_value(value)
            .map_err(|e| BenchError::Usage(format!("{} line {}: {e}", input.display(), n + 1)))?;
        points.push(report);
    }
    if points.is_empty() {
        return Err(BenchError::Usage(format!(
            "{}: no fanout results in it",
            input.display()
        )));
    }
    points.sort_by(|a, b| a.deliveries_per_sec.total_cmp(&b.deliveries_per_sec));
    Ok(points)
}

/// A line of the chart: its name, colour and the value it takes from a result.
type Series = (&'static str, RGBColor, fn(&LoadReport) -> f64);

/// Draws the chart into `out`.
pub fn draw(points: &[LoadReport], out: &Path) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| failed(format!("cannot draw {}: {e}", out.display()));
    let x_max = points.iter().map(|p| p.deliveries_per_sec).fold(1.0, f64::max) * 1.05;
    let y_max = points.iter().map(|p| p.deliver_ms.p999).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(out, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let clients = points[0].clients;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("chatd fan-out: delivery latency, {clients} subscribers"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("deliveries/s")
        .y_desc("latency (ms)")
        .draw()
        .map_err(|e| err(&e))?;
    let series: [Series; 3] = [
        ("p50", BLUE, |p| p.deliver_ms.p50),
        ("p99", RGBColor(230, 120, 0), |p| p.deliver_ms.p99),
        ("p99.9", RED, |p| p.deliver_ms.p999),
    ];
    for (name, color, value) in series {
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.deliveries_per_sec, value(p))),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.deliveries_per_sec, value(p)), 3, color.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
