//! Plain-text tables for the human-readable reports: columns padded to their widest cell.

/// `rows` (the first is the header) as aligned text, the columns in `right` right-aligned.
pub fn table(rows: &[Vec<String>], right: &[usize]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| match right.contains(&c) {
                true => format!("{s:>w$}", w = widths[c]),
                false => format!("{s:<w$}", w = widths[c]),
            })
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let rows = vec![
            vec!["A".to_string(), "N".into()],
            vec!["long name".into(), "7".into()],
            vec!["b".into(), "1234".into()],
        ];
        assert_eq!(
            super::table(&rows, &[1]),
            "  A             N\n  long name     7\n  b          1234\n"
        );
    }
}
