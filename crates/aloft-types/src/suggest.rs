//! "Did you mean" suggestions for misspelt field names, task names, enum values, and the
//! names other crates look up (clouds, regions, instance types): one rule everywhere.

/// The candidate closest to `word`, if one is close enough to be a likely typo: the same up to
/// case and `-`/`_`, within a small edit distance, or sharing a long prefix.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let normal = normalise(word);
    if normal.is_empty() {
        return None;
    }
    let word_len = normal.chars().count();
    let mut best: Option<((usize, usize), &'a str)> = None;
    // Allow one edit for short words and two for longer ones, so that `cpu` finds `cpus` but
    // `x` does not find `run`.
    let limit = if word_len <= 3 { 1 } else { 2 };
    for candidate in candidates {
        let candidate_normal = normalise(candidate);
        let candidate_len = candidate_normal.chars().count();
        let prefix = common_prefix(&normal, &candidate_normal);
        // Words whose lengths differ by more than the limit are never within it, so the
        // (quadratic) distance is only worked out for candidates of about the same length.
        let distance = if word_len.abs_diff(candidate_len) <= limit {
            edit_distance(&normal, &candidate_normal)
        } else {
            usize::MAX
        };
        let score = if distance <= limit {
            Some(distance)
        } else if prefix >= 4 && (prefix == word_len || prefix == candidate_len) {
            // One is a prefix of the other (`accel` for `accelerators`).
            Some(limit + 1)
        } else {
            None
        };
        // Ties go to the candidate closest in length (`A10O` means `A100`, not `A10`).
        let rank = score.map(|score| (score, word_len.abs_diff(candidate_len)));
        if let Some(rank) = rank
            && best.is_none_or(|(best_rank, _)| rank < best_rank)
        {
            best = Some((rank, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn normalise(word: &str) -> String {
    word.trim().to_ascii_lowercase().replace('-', "_")
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// Levenshtein distance with adjacent transpositions counted as one edit. Inputs are capped at
/// 64 characters so that hostile keys cost little; longer words are never close to a field name.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let width = b.len() + 1;
    let mut rows = vec![vec![0usize; width]; a.len() + 1];
    for (row_idx, row) in rows.iter_mut().enumerate() {
        if let Some(first) = row.first_mut() {
            *first = row_idx;
        }
    }
    if let Some(first_row) = rows.first_mut() {
        for (col_idx, cell) in first_row.iter_mut().enumerate() {
            *cell = col_idx;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a.get(i - 1) != b.get(j - 1));
            let at = |rows: &Vec<Vec<usize>>, r: usize, c: usize| {
                rows.get(r)
                    .and_then(|row| row.get(c))
                    .copied()
                    .unwrap_or(usize::MAX / 2)
            };
            let mut value = (at(&rows, i - 1, j) + 1)
                .min(at(&rows, i, j - 1) + 1)
                .min(at(&rows, i - 1, j - 1) + cost);
            if i > 1 && j > 1 && a.get(i - 1) == b.get(j - 2) && a.get(i - 2) == b.get(j - 1) {
                value = value.min(at(&rows, i - 2, j - 2) + 1);
            }
            if let Some(cell) = rows.get_mut(i).and_then(|row| row.get_mut(j)) {
                *cell = value;
            }
        }
    }
    rows.last().and_then(|row| row.last()).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(word: &str, expected: Option<&str>) {
        let fields = [
            "name",
            "num_nodes",
            "accelerators",
            "cpus",
            "run",
            "setup",
            "resources",
        ];
        assert_eq!(suggest(word, fields), expected, "suggestion for {word}");
    }

    #[test]
    fn suggestions() {
        check("acelerators", Some("accelerators"));
        check("accelerator", Some("accelerators"));
        check("accel", Some("accelerators"));
        check("num-nodes", Some("num_nodes"));
        check("NumNodes", Some("num_nodes"));
        check("Num_Nodes", Some("num_nodes"));
        check("cpu", Some("cpus"));
        check("rnu", Some("run"));
        check("resource", Some("resources"));
        check("x", None);
        check("memory", None);
        check("", None);
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
