//! "Did you mean ...?" as gqlparser (after graphql-js) words it: the options within an edit
//! distance of 40% of what was typed, closest first, at most five in an "or" list.

/// Edit distance between two strings, a change of case alone counting as one edit.
fn lexical_distance(a: &str, b: &str) -> usize {
    if a == b {
        return 0;
    }
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    if a == b {
        return 1;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The options close enough to `typed`, closest first.
pub fn suggestion_list(typed: &str, options: &[&str]) -> Vec<String> {
    let threshold = (typed.len() * 2 / 5 + 1).max(1);
    let mut close: Vec<(usize, &str)> = options
        .iter()
        .map(|o| (lexical_distance(typed, o), *o))
        .filter(|(d, _)| *d <= threshold)
        .collect();
    close.sort_by_key(|(d, _)| *d);
    close.into_iter().map(|(_, o)| o.to_string()).collect()
}

/// `A`, `A or B`, `A, B, or C`: the first five.
pub fn or_list(items: &[String]) -> String {
    let items = &items[..items.len().min(5)];
    match items {
        [a, b] => format!("{a} or {b}"),
        _ => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i != 0 {
                    out.push_str(if i == items.len() - 1 { ", or " } else { ", " });
                }
                out.push_str(item);
            }
            out
        }
    }
}

pub fn quoted_or_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    or_list(&quoted)
}

/// ` prefix "A" or "B"?` when something is close to `typed`, else nothing.
pub fn quoted(prefix: &str, typed: &str, options: &[&str]) -> String {
    let list = suggestion_list(typed, options);
    if list.is_empty() {
        return String::new();
    }
    format!(" {prefix} {}?", quoted_or_list(&list))
}

/// ` prefix A or B?`, unquoted.
pub fn unquoted(prefix: &str, typed: &str, options: &[&str]) -> String {
    let list = suggestion_list(typed, options);
    if list.is_empty() {
        return String::new();
    }
    format!(" {prefix} {}?", or_list(&list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_count_edits_and_case_changes_once() {
        assert_eq!(lexical_distance("name", "name"), 0);
        assert_eq!(lexical_distance("Name", "nAME"), 1);
        assert_eq!(lexical_distance("kitten", "sitting"), 3);
        assert_eq!(lexical_distance("", "abc"), 3);
    }

    #[test]
    fn suggestions_are_close_options_closest_first() {
        let options = ["salary2", "id", "salary", "salaries", "name"];
        assert_eq!(
            suggestion_list("salry", &options),
            vec!["salary", "salary2"]
        );
        assert_eq!(
            quoted("Did you mean", "nmae", &options),
            " Did you mean \"name\"?"
        );
        assert_eq!(quoted("Did you mean", "zzzzzz", &options), "");
    }

    #[test]
    fn or_lists_read_as_english_and_stop_at_five() {
        let items: Vec<String> = ["a", "b", "c", "d", "e", "f"].map(String::from).to_vec();
        assert_eq!(or_list(&items[..1]), "a");
        assert_eq!(or_list(&items[..2]), "a or b");
        assert_eq!(or_list(&items), "a, b, c, d, or e");
    }
}
