//! Lines (comments, `\\` continuations, positions) and tokens.

use super::*;

/// A logical line: physical lines joined at trailing backslashes.
pub(super) struct Logical<'a> {
    pub(super) text: String,
    /// (offset in `text` where the piece starts, physical line number, physical text,
    /// column in the physical line where the piece starts)
    pub(super) pieces: Vec<(usize, usize, &'a str, usize)>,
}

impl Logical<'_> {
    /// Physical (line, column) of byte offset `at` of the logical text.
    pub(super) fn position(&self, at: usize) -> (usize, usize) {
        let piece = self
            .pieces
            .iter()
            .rev()
            .find(|(start, ..)| *start <= at)
            .or(self.pieces.first());
        match piece {
            Some((start, line, _, col0)) => {
                let within = at.saturating_sub(*start);
                let logical_piece = self.text.get(*start..).unwrap_or("");
                let chars = logical_piece
                    .char_indices()
                    .take_while(|(i, _)| *i < within)
                    .count();
                (*line, col0 + chars + 1)
            }
            None => (0, 1),
        }
    }

    /// The physical line holding byte offset `at`.
    pub(super) fn physical(&self, at: usize) -> String {
        self.pieces
            .iter()
            .rev()
            .find(|(start, ..)| *start <= at)
            .or(self.pieces.first())
            .map_or(String::new(), |(_, _, text, _)| text.to_string())
    }
}

pub(super) fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

pub(super) fn logical_lines(text: &str) -> Vec<Logical<'_>> {
    let mut out = Vec::new();
    let mut current: Option<Logical> = None;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let code = strip_comment(raw).trim_end();
        let (body, continues) = match code.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (code, false),
        };
        let lead = body.len() - body.trim_start().len();
        let piece_text = &body[lead..];
        let col0 = raw[..lead.min(raw.len())].chars().count();
        let cur = current.get_or_insert_with(|| Logical {
            text: String::new(),
            pieces: Vec::new(),
        });
        if !cur.text.is_empty() {
            cur.text.push(' ');
        }
        cur.pieces.push((cur.text.len(), line_no, raw, col0));
        // Past the limit, keep one byte too many so the length check reports it.
        let room = (MAX_LINE + 1).saturating_sub(cur.text.len());
        let mut cut = piece_text.len().min(room);
        while !piece_text.is_char_boundary(cut) {
            cut -= 1;
        }
        cur.text.push_str(&piece_text[..cut]);
        if !continues {
            if let Some(l) = current.take() {
                out.push(l);
            }
        }
    }
    if let Some(l) = current.take() {
        out.push(l);
    }
    out
}

// ---------------------------------------------------------------------------------
// Tokens.

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    Word(String),
    Num(u64),
    Punct(&'static str),
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) at: usize,
}

pub(super) const PUNCT: [&str; 21] = [
    "||", "&&", "==", "!=", "<=", ">=", "=>", "<", ">", "|", "&", "!", "~", "(", ")", "{", "}",
    ",", ";", ":", "-",
];

pub(super) fn lex(text: &str) -> Result<Vec<Token>, (usize, String)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'@' {
            let start = i;
            i += 1;
            while i < bytes.len() {
                let d = bytes[i];
                let hyphen_word = d == b'-'
                    && bytes.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic())
                    && bytes[i - 1].is_ascii_alphabetic();
                if d.is_ascii_alphanumeric() || d == b'_' || hyphen_word {
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(Token {
                tok: Tok::Word(text[start..i].to_string()),
                at: start,
            });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let lit = &text[start..i];
            let value = parse_number(lit).map_err(|m| (start, m))?;
            out.push(Token {
                tok: Tok::Num(value),
                at: start,
            });
        } else if let Some(p) = PUNCT.iter().find(|p| text[i..].starts_with(**p)) {
            out.push(Token {
                tok: Tok::Punct(p),
                at: i,
            });
            i += p.len();
        } else {
            let ch = text[i..].chars().next().unwrap_or('?');
            return Err((i, format!("unexpected character `{ch}`")));
        }
    }
    Ok(out)
}

pub(super) fn parse_number(lit: &str) -> Result<u64, String> {
    let (digits, radix) = if let Some(h) = lit.strip_prefix("0x").or_else(|| lit.strip_prefix("0X"))
    {
        (h, 16)
    } else if let Some(b) = lit.strip_prefix("0b").or_else(|| lit.strip_prefix("0B")) {
        (b, 2)
    } else if lit.len() > 1 && lit.starts_with('0') {
        (&lit[1..], 8)
    } else {
        (lit, 10)
    };
    let digits = digits.replace('_', "");
    if digits.is_empty() {
        return Err(format!("malformed number `{lit}`"));
    }
    u64::from_str_radix(&digits, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => format!("value `{lit}` overflows 64 bits"),
        _ => format!("malformed number `{lit}`"),
    })
}
