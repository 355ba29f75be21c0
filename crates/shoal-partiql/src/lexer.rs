//! The lexer: statement text to [`Token`]s with byte offsets (for line and column in errors).

use crate::error::ParseError;

/// What a token is. Keywords are bare words; the parser recognises them case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare word: a letter, `_` or `$`, then letters, digits, `_` or `$`.
    Word(String),
    /// A double-quoted identifier, unescaped (`""` inside stands for `"`).
    Quoted(String),
    /// A single-quoted string literal, unescaped (`''` inside stands for `'`).
    Str(String),
    /// An unsigned number: digits, an optional fraction, an optional exponent.
    Num(String),
    /// `?`
    Param,
    Star,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    /// `<<`
    LSet,
    /// `>>`
    RSet,
    Comma,
    Dot,
    Colon,
    Eq,
    /// `<>`
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => format!("\"{q}\""),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Num(n) => n.clone(),
            Tok::Param => "?".into(),
            Tok::Star => "*".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::LBracket => "[".into(),
            Tok::RBracket => "]".into(),
            Tok::LBrace => "{".into(),
            Tok::RBrace => "}".into(),
            Tok::LSet => "<<".into(),
            Tok::RSet => ">>".into(),
            Tok::Comma => ",".into(),
            Tok::Dot => ".".into(),
            Tok::Colon => ":".into(),
            Tok::Eq => "=".into(),
            Tok::Ne => "<>".into(),
            Tok::Lt => "<".into(),
            Tok::Le => "<=".into(),
            Tok::Gt => ">".into(),
            Tok::Ge => ">=".into(),
            Tok::Plus => "+".into(),
            Tok::Minus => "-".into(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
}

/// 1-based line and column (in characters) of byte offset `at` in `src`.
pub(crate) fn line_col(src: &str, at: usize) -> (usize, usize) {
    let before = src.get(..at).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// A syntax error at byte offset `at`.
pub(crate) fn syntax_error(src: &str, at: usize, detail: impl Into<String>) -> ParseError {
    let (line, column) = line_col(src, at);
    ParseError::Syntax {
        detail: detail.into(),
        line,
        column,
    }
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// Splits `src` into tokens.
///
/// # Errors
/// A [`ParseError::Syntax`] for an unterminated string or quoted identifier, or a character
/// that starts no token (`!`, `#`, `;`, ...).
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '\'' | '"' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some((_, d)) if d == c => {
                            if chars.peek().map(|&(_, e)| e) == Some(c) {
                                chars.next();
                                text.push(c);
                            } else {
                                break;
                            }
                        }
                        Some((_, d)) => text.push(d),
                        None => {
                            let what = if c == '\'' {
                                "string literal"
                            } else {
                                "quoted identifier"
                            };
                            return Err(syntax_error(src, start, format!("unterminated {what}")));
                        }
                    }
                }
                if c == '\'' {
                    Tok::Str(text)
                } else {
                    Tok::Quoted(text)
                }
            }
            c if c.is_ascii_digit() => {
                let mut end = start + 1;
                let digits = |chars: &mut std::iter::Peekable<std::str::CharIndices>,
                              end: &mut usize| {
                    while let Some(&(i, d)) = chars.peek() {
                        if !d.is_ascii_digit() {
                            break;
                        }
                        *end = i + 1;
                        chars.next();
                    }
                };
                digits(&mut chars, &mut end);
                let rest = src.get(end..).unwrap_or("").as_bytes();
                if rest.first() == Some(&b'.') && rest.get(1).is_some_and(u8::is_ascii_digit) {
                    chars.next();
                    digits(&mut chars, &mut end);
                }
                let rest = src.get(end..).unwrap_or("").as_bytes();
                if matches!(rest.first(), Some(b'e' | b'E')) {
                    let sign = usize::from(matches!(rest.get(1), Some(b'+' | b'-')));
                    if rest.get(1 + sign).is_some_and(u8::is_ascii_digit) {
                        for _ in 0..=sign {
                            chars.next();
                        }
                        end += 1 + sign;
                        digits(&mut chars, &mut end);
                    }
                }
                Tok::Num(src.get(start..end).unwrap_or("").to_string())
            }
            c if is_word_start(c) => {
                let mut end = start + 1;
                while let Some(&(i, d)) = chars.peek() {
                    if !is_word_char(d) {
                        break;
                    }
                    end = i + 1;
                    chars.next();
                }
                Tok::Word(src.get(start..end).unwrap_or("").to_string())
            }
            '?' => Tok::Param,
            '*' => Tok::Star,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            ':' => Tok::Colon,
            '=' => Tok::Eq,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '<' => match chars.peek().map(|&(_, d)| d) {
                Some('<') => {
                    chars.next();
                    Tok::LSet
                }
                Some('=') => {
                    chars.next();
                    Tok::Le
                }
                Some('>') => {
                    chars.next();
                    Tok::Ne
                }
                _ => Tok::Lt,
            },
            '>' => match chars.peek().map(|&(_, d)| d) {
                Some('>') => {
                    chars.next();
                    Tok::RSet
                }
                Some('=') => {
                    chars.next();
                    Tok::Ge
                }
                _ => Tok::Gt,
            },
            other => {
                return Err(syntax_error(
                    src,
                    start,
                    format!("unexpected character '{other}'"),
                ));
            }
        };
        out.push(Token { tok, start });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_literals_identifiers_and_operators() {
        assert_eq!(
            kinds(r#"SELECT "a""b".c[12] FROM t WHERE x<>'it''s' AND y>=1.5e-3 AND z IN <<?>>"#),
            vec![
                Tok::Word("SELECT".into()),
                Tok::Quoted("a\"b".into()),
                Tok::Dot,
                Tok::Word("c".into()),
                Tok::LBracket,
                Tok::Num("12".into()),
                Tok::RBracket,
                Tok::Word("FROM".into()),
                Tok::Word("t".into()),
                Tok::Word("WHERE".into()),
                Tok::Word("x".into()),
                Tok::Ne,
                Tok::Str("it's".into()),
                Tok::Word("AND".into()),
                Tok::Word("y".into()),
                Tok::Ge,
                Tok::Num("1.5e-3".into()),
                Tok::Word("AND".into()),
                Tok::Word("z".into()),
                Tok::Word("IN".into()),
                Tok::LSet,
                Tok::Param,
                Tok::RSet,
            ]
        );
    }

    #[test]
    fn a_number_stops_before_a_dot_not_followed_by_a_digit_and_a_bare_exponent() {
        assert_eq!(
            kinds("1.a 2e 3E+4"),
            vec![
                Tok::Num("1".into()),
                Tok::Dot,
                Tok::Word("a".into()),
                Tok::Num("2".into()),
                Tok::Word("e".into()),
                Tok::Num("3E+4".into()),
            ]
        );
    }

    #[test]
    fn unterminated_quotes_are_errors_with_their_position() {
        let e = tokenize("SELECT * FROM\n  'abc").unwrap_err();
        assert!(
            matches!(
                e,
                ParseError::Syntax {
                    line: 2,
                    column: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(tokenize("\"abc").is_err());
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_col("é = ", 3), (1, 3));
    }
}
