//! Output of the inspection commands: aligned tables for people, JSON for
//! scripts.

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// Prints `rows` as JSON, or as a table with `header` built by `cells`.
pub fn print<T: Serialize>(
    format: Format,
    rows: &[T],
    header: &[&str],
    cells: impl Fn(&T) -> Vec<String>,
) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(rows).expect("serializable rows")
        ),
        Format::Table => {
            let body: Vec<Vec<String>> = rows.iter().map(cells).collect();
            let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
            for row in &body {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.len());
                }
            }
            let line = |cells: Vec<&str>| {
                let parts: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", parts.join("  ").trim_end());
            };
            line(header.to_vec());
            for row in &body {
                line(row.iter().map(String::as_str).collect());
            }
        }
    }
}
