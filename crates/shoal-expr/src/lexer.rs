//! The expression lexer: turns text into [`Token`]s with byte spans (for `near:` in syntax errors).

/// What a token is. Keywords are recognised by the parser (case-insensitively) from `Ident`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare name or keyword: a letter, then letters, digits or `_`.
    Ident(String),
    /// `#name` (the text includes the `#`).
    NamePh(String),
    /// `:value` (the text includes the `:`).
    ValuePh(String),
    /// Unsigned decimal digits (list indexes).
    Int(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    /// Any other character; always a syntax error where the parser meets it.
    Unknown,
}

/// A token and its byte range in the source.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits `src` into tokens. Never fails: unknown characters become [`Tok::Unknown`].
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let mut end = start + c.len_utf8();
        let mut take_word = |end: &mut usize| {
            while let Some(&(i, d)) = chars.peek() {
                if !is_word_char(d) {
                    break;
                }
                *end = i + d.len_utf8();
                chars.next();
            }
        };
        let tok = match c {
            ' ' | '\t' | '\n' | '\r' => continue,
            '#' | ':' => {
                take_word(&mut end);
                if end == start + 1 {
                    Tok::Unknown
                } else if c == '#' {
                    Tok::NamePh(src[start..end].to_string())
                } else {
                    Tok::ValuePh(src[start..end].to_string())
                }
            }
            c if c.is_ascii_digit() => {
                while let Some(&(i, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    end = i + 1;
                    chars.next();
                }
                Tok::Int(src[start..end].to_string())
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                take_word(&mut end);
                Tok::Ident(src[start..end].to_string())
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '=' => Tok::Eq,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '<' => match chars.peek() {
                Some(&(_, '=')) => {
                    chars.next();
                    end += 1;
                    Tok::Le
                }
                Some(&(_, '>')) => {
                    chars.next();
                    end += 1;
                    Tok::Ne
                }
                _ => Tok::Lt,
            },
            '>' => match chars.peek() {
                Some(&(_, '=')) => {
                    chars.next();
                    end += 1;
                    Tok::Ge
                }
                _ => Tok::Gt,
            },
            _ => Tok::Unknown,
        };
        out.push(Token { tok, start, end });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_comparators_placeholders_and_paths() {
        assert_eq!(
            kinds("a.b[12] <> :v AND #n>=:w"),
            vec![
                Tok::Ident("a".into()),
                Tok::Dot,
                Tok::Ident("b".into()),
                Tok::LBracket,
                Tok::Int("12".into()),
                Tok::RBracket,
                Tok::Ne,
                Tok::ValuePh(":v".into()),
                Tok::Ident("AND".into()),
                Tok::NamePh("#n".into()),
                Tok::Ge,
                Tok::ValuePh(":w".into()),
            ]
        );
    }

    #[test]
    fn unknown_characters_become_unknown_tokens() {
        let t = tokenize("a $ é");
        assert_eq!(t[1].tok, Tok::Unknown);
        assert_eq!(t[2].tok, Tok::Unknown);
        assert_eq!((t[2].start, t[2].end), (4, 6));
    }
}
