//! The ASCII tables OPA's CLI prints (`opa inspect`, `opa eval -f pretty` bindings): centred
//! headers, left-aligned cells, and a cell's lines stacked in its row.

/// Renders `rows` under `headers`; a cell holding newlines takes several lines.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            let longest = cell.lines().map(width).max().unwrap_or(0);
            widths[i] = widths[i].max(longest);
        }
    }
    let rule = {
        let mut line = String::from("+");
        for w in &widths {
            line.push_str(&"-".repeat(w + 2));
            line.push('+');
        }
        line.push('\n');
        line
    };
    let mut out = rule.clone();
    out.push('|');
    for (h, w) in headers.iter().zip(&widths) {
        let pad = w - width(h);
        let left = pad / 2;
        out.push_str(&format!(
            " {}{}{} |",
            " ".repeat(left),
            h,
            " ".repeat(pad - left)
        ));
    }
    out.push('\n');
    out.push_str(&rule);
    for row in rows {
        let lines: Vec<Vec<&str>> = row.iter().map(|c| c.lines().collect()).collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for n in 0..height {
            out.push('|');
            for (i, w) in widths.iter().enumerate() {
                let text = lines.get(i).and_then(|l| l.get(n)).copied().unwrap_or("");
                out.push_str(&format!(" {}{} |", text, " ".repeat(w - width(text))));
            }
            out.push('\n');
        }
    }
    out.push_str(&rule);
    out
}

fn width(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn cells_align_and_stack() {
        let table = render(
            &["FIELD", "VALUE"],
            &[
                vec!["Revision".into(), "r1".into()],
                vec!["Roots".into(), "a\nlonger/root".into()],
            ],
        );
        assert_eq!(
            table,
            "+----------+-------------+\n\
             |  FIELD   |    VALUE    |\n\
             +----------+-------------+\n\
             | Revision | r1          |\n\
             | Roots    | a           |\n\
             |          | longer/root |\n\
             +----------+-------------+\n"
        );
    }
}
