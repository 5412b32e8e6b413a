//! A small aligned text table: a header row, then one row per item, columns two spaces apart.
//! Cells are [escaped](super::escape): a cell is one line, and no registry data reaches the
//! terminal as control or bidirectional characters.

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text: flush left.
    Left,
    /// Numbers: flush right.
    Right,
}

/// Rows of cells under named columns, rendered with every column as wide as its widest cell.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers and alignments.
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Table { columns: columns.to_vec(), rows: Vec::new() }
    }

    /// Appends a row. Missing cells render empty; cells past the last column are dropped. Control
    /// and bidirectional characters (newlines too) are escaped.
    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells.into_iter().map(|cell| super::escape::escape(&cell).into_owned()).collect();
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines of text, each ending with a newline and without trailing spaces.
    pub fn render(&self) -> String {
        let cell = |row: &[String], i: usize| row.get(i).map_or("", String::as_str).to_owned();
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| h.chars().count()).collect();
        for row in &self.rows {
            for (i, width) in widths.iter_mut().enumerate() {
                *width = (*width).max(cell(row, i).chars().count());
            }
        }
        let headers: Vec<String> = self.columns.iter().map(|(h, _)| (*h).to_owned()).collect();
        let mut out = String::new();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, ((_, align), width)) in self.columns.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let text = cell(row, i);
                let pad = " ".repeat(width - text.chars().count());
                match align {
                    Align::Left => {
                        line.push_str(&text);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(&text);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_their_widest_cell() {
        let mut table = Table::new(&[("NAME", Align::Left), ("N", Align::Right), ("NOTE", Align::Left)]);
        assert!(table.is_empty());
        table.row(vec!["a".into(), "10".into(), "x".into()]);
        table.row(vec!["long_name".into(), "7".into()]);
        assert_eq!(
            table.render(),
            "NAME        N  NOTE\n\
             a          10  x\n\
             long_name   7\n"
        );
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let mut table = Table::new(&[("A", Align::Left), ("B", Align::Left)]);
        table.row(vec!["é".into(), "b".into()]);
        assert_eq!(table.render(), "A  B\né  b\n");
    }

    #[test]
    fn cells_are_escaped_before_they_are_measured() {
        let mut table = Table::new(&[("A", Align::Left), ("B", Align::Left)]);
        table.row(vec!["\u{1b}[2J\n\u{202e}".into(), "b".into()]);
        assert_eq!(table.render(), "A                    B\n\\u{1b}[2J\\n\\u{202e}  b\n");
    }
}
