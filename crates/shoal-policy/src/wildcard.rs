//! IAM's wildcards: `*` matches any run of characters (none included), `?` exactly one.
//!
//! The matcher is the classic two-pointer glob with one backtrack point: O(pattern × text) in
//! the worst case, no recursion, no allocation, so a hostile pattern costs at most the product
//! of two bounded lengths (policies are at most a few KB).

/// Whether `text` matches `pattern` (`*` and `?` wildcards), comparing characters exactly.
pub fn matches(pattern: &str, text: &str) -> bool {
    glob(pattern, text, |a, b| a == b)
}

/// Whether `text` matches `pattern`, ignoring ASCII case (IAM compares action names so).
pub fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    glob(pattern, text, |a, b| a.eq_ignore_ascii_case(&b))
}

fn glob(pattern: &str, text: &str, eq: impl Fn(char, char) -> bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // The last `*` seen and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some('*'), _) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some('?'), Some(_)) => {
                pi += 1;
                ti += 1;
            }
            (Some(&pc), Some(&tc)) if eq(pc, tc) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry from there.
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn literal_and_wildcards() {
        assert!(matches("abc", "abc"));
        assert!(!matches("abc", "abd"));
        assert!(!matches("abc", "ab"));
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("a*c", "abbbc"));
        assert!(matches("a*c", "ac"));
        assert!(!matches("a*c", "acb"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*b*b*", "abab"));
        assert!(matches(
            "arn:aws:dynamodb:*:*:table/Books",
            "arn:aws:dynamodb:us-east-1:123456789012:table/Books"
        ));
        assert!(!matches(
            "arn:aws:dynamodb:*:*:table/Books",
            "arn:aws:dynamodb:us-east-1:123456789012:table/Books/index/I"
        ));
        assert!(matches(
            "arn:aws:dynamodb:*:*:table/Books*",
            "arn:aws:dynamodb:us-east-1:123456789012:table/Books/index/I"
        ));
        assert!(!matches("ABC", "abc"));
        assert!(matches_ignore_case("dynamodb:get*", "dynamodb:GetItem"));
        assert!(matches("é?", "éü"));
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let pattern = "*a".repeat(500) + "b";
        let text = "a".repeat(5000);
        assert!(!matches(&pattern, &text));
    }

    /// The model: a memoised recursive matcher, obviously right and slow.
    fn model(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| model(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && model(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && model(rest, &t[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_model(p in "[ab*?]{0,8}", t in "[ab]{0,10}") {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            prop_assert_eq!(matches(&p, &t), model(&pc, &tc));
        }
    }
}
