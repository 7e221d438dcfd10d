//! The printed result of a scenario: a titled two-column table and notes.

use std::fmt::Write as _;

/// One scenario's figures.
#[derive(Debug, Default)]
pub struct Section {
    pub title: String,
    pub rows: Vec<(String, String)>,
    pub notes: Vec<String>,
}

impl Section {
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            ..Section::default()
        }
    }

    pub fn row(&mut self, label: impl Into<String>, value: impl ToString) {
        self.rows.push((label.into(), value.to_string()));
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n{}", self.title);
        let width = self
            .rows
            .iter()
            .map(|(l, _)| l.len())
            .max()
            .unwrap_or(0)
            .max(20);
        let _ = writeln!(out, "{}", "-".repeat(width + 24));
        for (label, value) in &self.rows {
            let _ = writeln!(out, "{label:<width$}  {value:>20}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }
}
