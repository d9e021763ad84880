//! The policy text language (specified in `docs/policy-language.md`).
//!
//! ```text
//! @default trap
//! @include common.policy
//! read: allow
//! {close, exit_group}: allow
//! write: arg0 == 1 || arg0 == 2
//! ioctl: cmd == TCGETS || cmd == FIONREAD; errno ENOTTY
//! clone: !(flags & CLONE_THREAD) => errno EPERM
//! ```
//!
//! It reads minijail policy files unchanged (`1`, `return N`, `@frequency`, repeated
//! statements for one syscall, absolute `@include` paths found through include
//! directories). The parser never panics: every input gives a [`Policy`] or errors
//! with `file:line:column`.

use super::arch::Arch;
use super::params::{self, Width};
use super::{
    consts, fits_32, Action, Cond, Expr, Op, Policy, PolicyError, MAX_ERRNO, MAX_EXPR_DEPTH,
};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// How deeply `@include` may nest.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Errors reported before the parser gives up.
const MAX_ERRORS: usize = 50;
/// Longest logical line accepted (after `\` continuations), in bytes.
const MAX_LINE: usize = 64 * 1024;

/// One error, located in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file, as named by the user or the include that reached it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// The text of that line.
    pub line_text: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // Not about a line: the file itself could not be read.
            return write!(f, "{}: error: {}", self.file, self.message);
        }
        writeln!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.column, self.message
        )?;
        writeln!(f, "    {}", self.line_text)?;
        write!(f, "    {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

/// Every error found in a policy (at least one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseErrors(pub Vec<ParseError>);

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseErrors {}

/// Where `@include` finds files.
pub trait Sources {
    /// Load `path` as included from `from` (`None` for the top file). Returns a key that
    /// identifies the file (for cycle detection), its display name, and its text.
    fn load(&self, from: Option<&str>, path: &str) -> Result<(String, String, String), String>;
}

/// Files on disk: includes relative to the including file; an include that does not
/// exist as written is looked up by file name in each include directory, in order.
#[derive(Clone, Debug, Default)]
pub struct FileSources {
    /// Directories searched for includes not found where they point.
    pub include_dirs: Vec<PathBuf>,
}

impl Sources for FileSources {
    fn load(&self, from: Option<&str>, path: &str) -> Result<(String, String, String), String> {
        let written = Path::new(path);
        let mut candidates = Vec::new();
        match from.map(Path::new).and_then(Path::parent) {
            Some(dir) if written.is_relative() => candidates.push(dir.join(written)),
            _ => candidates.push(written.to_path_buf()),
        }
        if let Some(name) = written.file_name() {
            candidates.extend(self.include_dirs.iter().map(|d| d.join(name)));
        }
        let found = candidates.iter().find(|c| c.is_file()).ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
            let hint = if written.is_absolute() && self.include_dirs.is_empty() {
                "; for an installed path, pass --include-dir DIR holding a file of that name"
            } else {
                ""
            };
            format!(
                "cannot find `{path}` (looked at {}){hint}",
                tried.join(", ")
            )
        })?;
        let key = std::fs::canonicalize(found)
            .map_err(|e| format!("cannot open `{}`: {e}", found.display()))?;
        let text = std::fs::read_to_string(found)
            .map_err(|e| format!("cannot read `{}`: {e}", found.display()))?;
        Ok((key.display().to_string(), found.display().to_string(), text))
    }
}

/// A fixed set of named texts (the built-in presets include each other this way).
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedSources(pub &'static [(&'static str, &'static str)]);

impl Sources for EmbeddedSources {
    fn load(&self, _from: Option<&str>, path: &str) -> Result<(String, String, String), String> {
        self.0
            .iter()
            .find(|(name, _)| *name == path)
            .map(|(name, text)| (name.to_string(), name.to_string(), text.to_string()))
            .ok_or_else(|| format!("no built-in policy called `{path}`"))
    }
}

/// What a policy text is read for.
#[derive(Clone, Debug)]
pub struct Options {
    /// The architecture whose constant values are used (a few `O_*` flags differ).
    pub arch: Arch,
    /// Constants the caller binds, looked up before the built-in ones (e.g. the
    /// presets' `SELF_PID`).
    pub defines: Vec<(String, u64)>,
}

impl Options {
    /// Read for `arch` with no extra constants.
    pub fn new(arch: Arch) -> Options {
        Options {
            arch,
            defines: Vec::new(),
        }
    }

    /// Bind constant `name` to `value`.
    pub fn define(mut self, name: &str, value: u64) -> Options {
        self.defines.push((name.to_string(), value));
        self
    }
}

/// Parse the policy in file `path`.
pub fn parse_file(
    path: &Path,
    options: &Options,
    include_dirs: &[PathBuf],
) -> Result<Policy, ParseErrors> {
    let sources = FileSources {
        include_dirs: include_dirs.to_vec(),
    };
    parse_with(&sources, &path.display().to_string(), options)
}

/// Parse `text` as a policy file called `name`; includes are looked up in `sources`.
pub fn parse_str(
    name: &str,
    text: &str,
    options: &Options,
    sources: &dyn Sources,
) -> Result<Policy, ParseErrors> {
    let mut p = Parser::new(options, sources);
    p.file(name.to_string(), name.to_string(), text, 0);
    p.finish()
}

/// Parse the file `top` found through `sources`.
pub fn parse_with(
    sources: &dyn Sources,
    top: &str,
    options: &Options,
) -> Result<Policy, ParseErrors> {
    let mut p = Parser::new(options, sources);
    match sources.load(None, top) {
        Ok((key, display, text)) => p.file(key, display, &text, 0),
        Err(message) => p.errors.push(ParseError {
            file: top.to_string(),
            line: 0,
            column: 0,
            line_text: String::new(),
            message,
        }),
    }
    p.finish()
}

// ---------------------------------------------------------------------------------
// Lines: comments, continuations, positions.

/// A logical line: physical lines joined at trailing backslashes.
struct Logical<'a> {
    text: String,
    /// (offset in `text` where the piece starts, physical line number, physical text,
    /// column in the physical line where the piece starts)
    pieces: Vec<(usize, usize, &'a str, usize)>,
}

impl Logical<'_> {
    /// Physical (line, column) of byte offset `at` of the logical text.
    fn position(&self, at: usize) -> (usize, usize) {
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
    fn physical(&self, at: usize) -> String {
        self.pieces
            .iter()
            .rev()
            .find(|(start, ..)| *start <= at)
            .or(self.pieces.first())
            .map_or(String::new(), |(_, _, text, _)| text.to_string())
    }
}

fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

fn logical_lines(text: &str) -> Vec<Logical<'_>> {
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
enum Tok {
    Word(String),
    Num(u64),
    Punct(&'static str),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    at: usize,
}

const PUNCT: [&str; 21] = [
    "||", "&&", "==", "!=", "<=", ">=", "=>", "<", ">", "|", "&", "!", "~", "(", ")", "{", "}",
    ",", ";", ":", "-",
];

fn lex(text: &str) -> Result<Vec<Token>, (usize, String)> {
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

fn parse_number(lit: &str) -> Result<u64, String> {
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

// ---------------------------------------------------------------------------------
// Syntax tree of one statement's condition (parameters still by name).

#[derive(Clone, Debug)]
enum Ast {
    Cond {
        param: String,
        param_at: usize,
        op: Op,
        value: u64,
        value_at: usize,
    },
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
}

struct Cursor<'a> {
    toks: &'a [Token],
    pos: usize,
    end: usize,
    options: &'a Options,
}

type PResult<T> = Result<T, (usize, String)>;

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }
    fn peek2(&self) -> Option<&'a Tok> {
        self.toks.get(self.pos + 1).map(|t| &t.tok)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.at)
    }
    fn bump(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.pos).map(|t| &t.tok);
        self.pos += 1;
        t
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }
    fn eat(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, p: &str, what: &str) -> PResult<()> {
        if self.eat(p) {
            Ok(())
        } else {
            Err((
                self.at(),
                format!("expected {what}, found {}", self.describe()),
            ))
        }
    }
    fn describe(&self) -> String {
        match self.peek() {
            None => "end of line".into(),
            Some(Tok::Word(w)) => format!("`{w}`"),
            Some(Tok::Num(n)) => format!("`{n}`"),
            Some(Tok::Punct(p)) => format!("`{p}`"),
        }
    }
    fn done(&self) -> bool {
        self.pos >= self.toks.len()
    }

    // expr := and ('||' and)*
    fn expr(&mut self, depth: usize) -> PResult<Ast> {
        if depth > MAX_EXPR_DEPTH {
            return Err((
                self.at(),
                format!("conditions nest deeper than {MAX_EXPR_DEPTH} levels"),
            ));
        }
        let mut items = vec![self.and(depth)?];
        while self.eat("||") {
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Ast::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> PResult<Ast> {
        let mut items = vec![self.unary(depth)?];
        while self.eat("&&") {
            items.push(self.unary(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Ast::And(items)
        })
    }

    fn unary(&mut self, depth: usize) -> PResult<Ast> {
        if depth > MAX_EXPR_DEPTH {
            return Err((
                self.at(),
                format!("conditions nest deeper than {MAX_EXPR_DEPTH} levels"),
            ));
        }
        if self.eat("!") {
            return Ok(Ast::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.eat("(") {
            let e = self.expr(depth + 1)?;
            self.expect(")", "`)`")?;
            return Ok(e);
        }
        self.cond()
    }

    fn cond(&mut self) -> PResult<Ast> {
        let param_at = self.at();
        let param = match self.bump() {
            Some(Tok::Word(w)) => w.clone(),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err((
                    param_at,
                    format!(
                        "expected an argument (arg0..arg5 or a parameter name), found {}",
                        self.describe()
                    ),
                ));
            }
        };
        let op_at = self.at();
        let op = match self.bump() {
            Some(Tok::Punct("==")) => Op::Eq,
            Some(Tok::Punct("!=")) => Op::Ne,
            Some(Tok::Punct("<")) => Op::Lt,
            Some(Tok::Punct("<=")) => Op::Le,
            Some(Tok::Punct(">")) => Op::Gt,
            Some(Tok::Punct(">=")) => Op::Ge,
            Some(Tok::Punct("&")) => Op::AnyBits,
            Some(Tok::Word(w)) if w == "in" => Op::InMask,
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err((
                    op_at,
                    format!(
                        "expected a comparison (== != < <= > >= & in), found {}",
                        self.describe()
                    ),
                ));
            }
        };
        let value_at = self.at();
        let mut value = self.value(0)?;
        let mut op = op;
        let mut value_at = value_at;
        let mut negate = false;
        if op == Op::AnyBits && (self.is_punct("==") || self.is_punct("!=")) {
            // `arg & MASK == VALUE`: masked equality.
            negate = self.is_punct("!=");
            self.pos += 1;
            value_at = self.at();
            let mask = value;
            value = self.value(0)?;
            op = Op::MaskedEq(mask);
        }
        let cond = Ast::Cond {
            param,
            param_at,
            op,
            value,
            value_at,
        };
        Ok(if negate {
            Ast::Not(Box::new(cond))
        } else {
            cond
        })
    }

    // value := term ('|' term)*
    fn value(&mut self, depth: usize) -> PResult<u64> {
        let mut v = self.term(depth)?;
        while self.eat("|") {
            v |= self.term(depth)?;
        }
        Ok(v)
    }

    // term := '~' term | '-' NUMBER | '(' value ')' | NUMBER | NAME
    fn term(&mut self, depth: usize) -> PResult<u64> {
        if depth > MAX_EXPR_DEPTH {
            return Err((self.at(), "constant expression nests too deeply".into()));
        }
        let at = self.at();
        if self.eat("~") {
            return Ok(!self.term(depth + 1)?);
        }
        if self.eat("-") {
            return match self.bump() {
                Some(Tok::Num(n)) if *n <= 1u64 << 63 => Ok(n.wrapping_neg()),
                Some(Tok::Num(_)) => Err((at, "negative value overflows 64 bits".into())),
                _ => Err((at, "expected a number after `-`".into())),
            };
        }
        if self.eat("(") {
            let v = self.value(depth + 1)?;
            self.expect(")", "`)`")?;
            return Ok(v);
        }
        match self.bump() {
            Some(Tok::Num(n)) => Ok(*n),
            Some(Tok::Word(w)) => self
                .options
                .defines
                .iter()
                .find(|(n, _)| n == w)
                .map(|(_, v)| *v)
                .or_else(|| consts::lookup(self.options.arch, w))
                .ok_or_else(|| (at, format!("unknown constant `{w}`"))),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                Err((at, format!("expected a value, found {}", self.describe())))
            }
        }
    }

    /// An action, if the cursor is at one.
    fn action(&mut self) -> PResult<Action> {
        let at = self.at();
        let word = match self.bump() {
            Some(Tok::Num(1)) => return Ok(Action::Allow),
            Some(Tok::Word(w)) => w.as_str(),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err((at, format!("expected an action, found {}", self.describe())));
            }
        };
        let data = |c: &mut Cursor<'_>| -> PResult<u16> {
            if c.done() || c.is_punct(";") {
                return Ok(0);
            }
            let at = c.at();
            let v = c.value(0)?;
            u16::try_from(v).map_err(|_| (at, format!("data {v:#x} does not fit 16 bits")))
        };
        match word {
            "allow" => Ok(Action::Allow),
            "kill-process" | "kill" => Ok(Action::KillProcess),
            "kill-thread" => Ok(Action::KillThread),
            "log" => Ok(Action::Log),
            "user-notify" => Ok(Action::UserNotify),
            "trap" => Ok(Action::Trap(data(self)?)),
            "trace" => Ok(Action::Trace(data(self)?)),
            "errno" | "return" => {
                let at = self.at();
                if self.done() {
                    return Err((at, format!("`{word}` needs an errno value")));
                }
                let v = self.value(0)?;
                match u16::try_from(v) {
                    Ok(e) if e <= MAX_ERRNO => Ok(Action::Errno(e)),
                    _ => Err((at, format!("errno {v} out of range (0..=4095)"))),
                }
            }
            other => {
                self.pos = self.pos.saturating_sub(1);
                Err((at, format!(
                    "unknown action `{other}` (expected allow, 1, kill-process, kill-thread, trap, errno N, return N, log, user-notify, trace)"
                )))
            }
        }
    }
}

fn is_action_word(t: Option<&Tok>) -> bool {
    match t {
        Some(Tok::Num(1)) => true,
        Some(Tok::Word(w)) => matches!(
            w.as_str(),
            "allow"
                | "kill-process"
                | "kill"
                | "kill-thread"
                | "log"
                | "user-notify"
                | "trap"
                | "trace"
                | "errno"
                | "return"
        ),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------
// The parser proper.

struct Parser<'s> {
    options: &'s Options,
    sources: &'s dyn Sources,
    policy: Policy,
    default: Option<(Action, String)>,
    /// Include stack (keys), for cycle detection.
    stack: Vec<String>,
    /// Where each syscall got its unconditional rule.
    unconditional: HashMap<&'static str, String>,
    errors: Vec<ParseError>,
}

impl<'s> Parser<'s> {
    fn new(options: &'s Options, sources: &'s dyn Sources) -> Parser<'s> {
        Parser {
            options,
            sources,
            // Replaced by `@default` or left as kill-process.
            policy: Policy {
                default: Action::KillProcess,
                syscalls: Default::default(),
            },
            default: None,
            stack: Vec::new(),
            unconditional: HashMap::new(),
            errors: Vec::new(),
        }
    }

    fn finish(self) -> Result<Policy, ParseErrors> {
        if self.errors.is_empty() {
            Ok(self.policy)
        } else {
            Err(ParseErrors(self.errors))
        }
    }

    fn error(&mut self, file: &str, line: &Logical, at: usize, message: String) {
        if self.errors.len() >= MAX_ERRORS {
            return;
        }
        let (line_no, column) = line.position(at);
        let line_text = line.physical(at);
        self.errors.push(ParseError {
            file: file.to_string(),
            line: line_no,
            column,
            line_text,
            message,
        });
    }

    fn file(&mut self, key: String, display: String, text: &str, depth: usize) {
        self.stack.push(key.clone());
        for line in logical_lines(text) {
            if self.errors.len() >= MAX_ERRORS {
                break;
            }
            if line.text.trim().is_empty() {
                continue;
            }
            if line.text.len() > MAX_LINE {
                self.error(
                    &display,
                    &line,
                    0,
                    format!("line longer than {MAX_LINE} bytes"),
                );
                continue;
            }
            // The argument of @include and @frequency is a path, not tokens.
            let first_word_end = line
                .text
                .find(char::is_whitespace)
                .unwrap_or(line.text.len());
            let lexed = match &line.text[..first_word_end] {
                "@include" | "@frequency" => &line.text[..first_word_end],
                _ => line.text.as_str(),
            };
            let toks = match lex(lexed) {
                Ok(t) => t,
                Err((at, m)) => {
                    self.error(&display, &line, at, m);
                    continue;
                }
            };
            if let Err((at, m)) = self.line(&key, &display, &line, &toks, depth) {
                self.error(&display, &line, at, m);
            }
        }
        self.stack.pop();
    }

    fn line(
        &mut self,
        key: &str,
        display: &str,
        line: &Logical,
        toks: &[Token],
        depth: usize,
    ) -> PResult<()> {
        let mut c = Cursor {
            toks,
            pos: 0,
            end: line.text.len(),
            options: self.options,
        };
        match c.peek() {
            Some(Tok::Word(w)) if w.starts_with('@') => {
                self.directive(key, display, line, &mut c, depth)
            }
            _ => self.statement(display, line, &mut c),
        }
    }

    fn directive(
        &mut self,
        key: &str,
        display: &str,
        line: &Logical,
        c: &mut Cursor<'_>,
        depth: usize,
    ) -> PResult<()> {
        let at = c.at();
        let word = match c.bump() {
            Some(Tok::Word(w)) => w.clone(),
            _ => return Err((at, "expected a directive".into())),
        };
        match word.as_str() {
            "@default" => {
                let action = c.action()?;
                if !c.done() {
                    return Err((
                        c.at(),
                        format!("unexpected {} after the action", c.describe()),
                    ));
                }
                let here = location(display, line, at);
                if let Some((_, first)) = &self.default {
                    return Err((at, format!("a second @default (the first is at {first})")));
                }
                self.default = Some((action, here));
                self.policy.default = action;
                Ok(())
            }
            "@include" | "@frequency" => {
                // The path is the rest of the line, verbatim.
                let after = line.text.len().min(at + word.len());
                let rest = line.text.get(after..).unwrap_or("");
                let rest_at = after + (rest.len() - rest.trim_start().len());
                let path = line.text.get(rest_at..).unwrap_or("").trim();
                if path.is_empty() {
                    return Err((rest_at, format!("{word} needs a file name")));
                }
                if word == "@frequency" {
                    // Accepted for minijail compatibility and ignored: the balanced
                    // search bounds every syscall's cost, so frequencies cannot help.
                    return Ok(());
                }
                if depth + 1 > MAX_INCLUDE_DEPTH {
                    return Err((
                        rest_at,
                        format!("includes nest deeper than {MAX_INCLUDE_DEPTH}"),
                    ));
                }
                let (inc_key, inc_display, text) = self
                    .sources
                    .load(Some(key), path)
                    .map_err(|m| (rest_at, m))?;
                if let Some(i) = self.stack.iter().position(|k| *k == inc_key) {
                    let mut chain: Vec<&str> = self.stack[i..].iter().map(String::as_str).collect();
                    chain.push(&inc_key);
                    return Err((rest_at, format!("include cycle: {}", chain.join(" -> "))));
                }
                self.file(inc_key, inc_display, &text, depth + 1);
                Ok(())
            }
            other => Err((
                at,
                format!("unknown directive `{other}` (expected @default, @include or @frequency)"),
            )),
        }
    }

    fn statement(&mut self, display: &str, line: &Logical, c: &mut Cursor<'_>) -> PResult<()> {
        // Syscall names.
        let mut names: Vec<(String, usize)> = Vec::new();
        if c.eat("{") {
            loop {
                let at = c.at();
                match c.bump() {
                    Some(Tok::Word(w)) => names.push((w.clone(), at)),
                    _ => return Err((at, "expected a syscall name".into())),
                }
                if c.eat("}") {
                    break;
                }
                c.expect(",", "`,` or `}`")?;
            }
        } else {
            let at = c.at();
            match c.bump() {
                Some(Tok::Word(w)) => names.push((w.clone(), at)),
                _ => return Err((at, "expected a syscall name or `{`".into())),
            }
        }
        c.expect(":", "`:` after the syscall name")?;

        // Body.
        let body_at = c.at();
        let (cond, action, otherwise) = if is_action_word(c.peek())
            && (c.peek2().is_none()
                || matches!(c.peek(), Some(Tok::Word(w)) if matches!(w.as_str(), "errno" | "return" | "trap" | "trace")))
        {
            let a = c.action()?;
            (None, a, None)
        } else if c.done() {
            return Err((body_at, "expected an action or a condition".into()));
        } else {
            let e = c.expr(1)?;
            let action = if c.eat("=>") {
                c.action()?
            } else {
                Action::Allow
            };
            let otherwise = if c.eat(";") { Some(c.action()?) } else { None };
            (Some(e), action, otherwise)
        };
        if !c.done() {
            return Err((
                c.at(),
                format!("unexpected {} after the statement", c.describe()),
            ));
        }

        for (name, at) in names {
            let syscall = super::Syscall::new(&name)
                .map_err(|_| (at, format!("unknown syscall `{name}`")))?;
            let when = match &cond {
                None => Expr::True,
                Some(ast) => self.resolve(syscall.name(), ast)?,
            };
            if when == Expr::True {
                if let Some(first) = self.unconditional.get(syscall.name()) {
                    return Err((at, format!(
                        "`{name}` already has an unconditional rule (at {first}); a second one could never apply"
                    )));
                }
            } else if let Some(first) = self.unconditional.get(syscall.name()) {
                return Err((at, format!(
                    "`{name}` already has an unconditional rule (at {first}); this rule could never apply"
                )));
            }
            self.policy
                .add_rule(syscall.name(), when.clone(), action)
                .map_err(|e| (at, policy_message(e)))?;
            if when == Expr::True {
                self.unconditional
                    .insert(syscall.name(), location(display, line, at));
            }
            if let Some(o) = otherwise {
                self.policy
                    .set_otherwise(syscall.name(), o)
                    .map_err(|e| (body_at, policy_message(e)))?;
            }
        }
        Ok(())
    }

    /// Turn parameter names into indices for `syscall`, checking widths.
    fn resolve(&self, syscall: &'static str, ast: &Ast) -> PResult<Expr> {
        Ok(match ast {
            Ast::Cond {
                param,
                param_at,
                op,
                value,
                value_at,
            } => {
                let arg = params::index_of(syscall, param).ok_or_else(|| {
                    let known: Vec<&str> = params::params(syscall)
                        .map(|p| p.iter().map(|(n, _)| *n).collect())
                        .unwrap_or_default();
                    let hint = if known.is_empty() {
                        "use arg0..arg5".to_string()
                    } else {
                        format!("its parameters are {}, or arg0..arg5", known.join(", "))
                    };
                    (
                        *param_at,
                        format!("`{syscall}` has no parameter `{param}` ({hint})"),
                    )
                })?;
                if params::width(syscall, arg) == Width::W32 {
                    // The mask of `arg & MASK == VALUE` is checked first: it comes first.
                    let wide = match op {
                        Op::MaskedEq(m) if !fits_32(*m) => Some(("mask", *m)),
                        _ if !fits_32(*value) => Some(("value", *value)),
                        _ => None,
                    };
                    if let Some((what, v)) = wide {
                        return Err((*value_at, format!(
                            "{what} {v:#x} does not fit 32-bit parameter {param} of {syscall} (use a 32-bit or sign-extended value)"
                        )));
                    }
                }
                Expr::Cond(Cond {
                    arg,
                    op: *op,
                    value: *value,
                })
            }
            Ast::And(v) => Expr::And(
                v.iter()
                    .map(|a| self.resolve(syscall, a))
                    .collect::<PResult<_>>()?,
            ),
            Ast::Or(v) => Expr::Or(
                v.iter()
                    .map(|a| self.resolve(syscall, a))
                    .collect::<PResult<_>>()?,
            ),
            Ast::Not(a) => Expr::Not(Box::new(self.resolve(syscall, a)?)),
        })
    }
}

fn location(display: &str, line: &Logical<'_>, at: usize) -> String {
    let (l, c) = line.position(at);
    format!("{display}:{l}:{c}")
}

fn policy_message(e: PolicyError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::arch::SeccompData;
    use crate::policy::arg;

    struct Mem(Vec<(&'static str, &'static str)>);
    impl Sources for Mem {
        fn load(
            &self,
            _from: Option<&str>,
            path: &str,
        ) -> Result<(String, String, String), String> {
            self.0
                .iter()
                .find(|(n, _)| *n == path)
                .map(|(n, t)| (n.to_string(), n.to_string(), t.to_string()))
                .ok_or_else(|| format!("cannot find `{path}`"))
        }
    }

    fn parse(text: &str) -> Result<Policy, ParseErrors> {
        parse_str("t.policy", text, &Options::new(Arch::X86_64), &Mem(vec![]))
    }

    fn err(text: &str) -> ParseError {
        match parse(text) {
            Err(ParseErrors(mut v)) => v.remove(0),
            Ok(p) => panic!("expected an error, got {p:?}"),
        }
    }

    #[test]
    fn the_issue_example() {
        let text = "\
# comment; a trailing backslash continues a line
@default trap
read: allow
{close, exit_group}: allow
write: arg0 == 1 || \\
       arg0 == 2
ioctl: arg1 == TCGETS || arg1 == FIONREAD; errno ENOTTY
mprotect: arg2 in PROT_READ|PROT_WRITE
socketpair: domain == AF_UNIX
getppid: errno EPERM
ptrace: kill-process
";
        let p = parse(text).expect("parses");
        assert_eq!(p.default_action(), Action::Trap(0));
        let a = Arch::X86_64;
        let call = |name: &str, args: [u64; 6]| {
            p.evaluate(
                a,
                &SeccompData::new(a, a.syscall_number(name).expect("nr"), args),
            )
        };
        assert_eq!(call("read", [0; 6]), Action::Allow);
        assert_eq!(call("exit_group", [0; 6]), Action::Allow);
        assert_eq!(call("write", [2, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(call("write", [3, 0, 0, 0, 0, 0]), Action::Trap(0));
        assert_eq!(call("ioctl", [0, 0x5401, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(call("ioctl", [0, 0x5412, 0, 0, 0, 0]), Action::Errno(25));
        assert_eq!(call("mprotect", [0, 0, 3, 0, 0, 0]), Action::Allow);
        assert_eq!(call("mprotect", [0, 0, 4, 0, 0, 0]), Action::Trap(0));
        assert_eq!(call("socketpair", [1, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(call("socketpair", [2, 0, 0, 0, 0, 0]), Action::Trap(0));
        assert_eq!(call("getppid", [0; 6]), Action::Errno(1));
        assert_eq!(call("ptrace", [0; 6]), Action::KillProcess);
        assert_eq!(call("getpid", [0; 6]), Action::Trap(0));
    }

    #[test]
    fn overlong_lines_are_errors() {
        let long = format!("read: arg0 == {}", "1".repeat(70_000));
        assert!(err(&long).message.contains("longer than"));
        let continued = format!(
            "read: arg0 == 1 {}\n|| arg0 == 2",
            "|| arg0 == 1 ".repeat(6_000)
        );
        let continued = continued.replace("\n", "\\\n");
        assert!(err(&continued).message.contains("longer than"));
    }

    #[test]
    fn default_without_directive_is_kill_process() {
        assert_eq!(
            parse("read: 1").expect("parses").default_action(),
            Action::KillProcess
        );
    }

    #[test]
    fn constants() {
        let p = parse(
            "kill: sig == -1 || sig == 0x10 || sig == 017 || sig == (SIGUSR1|SIGUSR2)\n\
                       mmap: prot in ~PROT_EXEC",
        )
        .expect("parses");
        let r = p.rules_for("kill").expect("kill");
        let Expr::Or(v) = &r.rules()[0].when else {
            panic!("or")
        };
        let values: Vec<u64> = v
            .iter()
            .map(|e| match e {
                Expr::Cond(c) => c.value,
                _ => 0,
            })
            .collect();
        assert_eq!(values, vec![u64::MAX, 16, 15, 10 | 12]);
        let m = p.rules_for("mmap").expect("mmap");
        assert_eq!(m.rules()[0].when, arg(2).in_mask(!4));
    }

    #[test]
    fn errors_carry_position_and_caret() {
        let e = err("read: allow\nwrite: arg0 == NOPE\n");
        assert_eq!((e.line, e.column), (2, 16));
        assert!(
            e.message.contains("unknown constant `NOPE`"),
            "{}",
            e.message
        );
        let shown = e.to_string();
        assert!(shown.starts_with("t.policy:2:16: error:"), "{shown}");
        assert!(
            shown.ends_with("    write: arg0 == NOPE\n                   ^"),
            "{shown:?}"
        );

        let e = err("frobnicate: allow");
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.contains("unknown syscall"));

        let e = err("read: allow\nread: allow");
        assert_eq!(e.line, 2);
        assert!(
            e.message
                .contains("already has an unconditional rule (at t.policy:1:1)"),
            "{}",
            e.message
        );

        let e = err("ioctl: cmd == 0x100005412");
        assert!(
            e.message.contains("does not fit 32-bit parameter cmd"),
            "{}",
            e.message
        );

        let e = err("read: fd == 0xffffffffffffffffff");
        assert!(e.message.contains("overflows 64 bits"), "{}", e.message);
        assert_eq!(e.column, 13);

        let e = err("write: arg0 == 1 ||\\\n   arg9 == 2");
        assert_eq!((e.line, e.column), (2, 4));

        let e = err("@default errno 5000");
        assert!(e.message.contains("out of range"));
        let e = err("socket: proto == 0");
        assert!(
            e.message.contains(
                "`socket` has no parameter `proto` (its parameters are domain, type, protocol"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn masked_equality_and_defines() {
        let opts = Options::new(Arch::X86_64).define("SELF_PID", 42);
        let p = parse_str(
            "t",
            "futex: op & FUTEX_CMD_MASK == FUTEX_WAIT || op & 0x7f != 6\nkill: pid == SELF_PID",
            &opts,
            &Mem(vec![]),
        )
        .expect("parses");
        let a = Arch::X86_64;
        let futex = a.syscall_number("futex").expect("futex");
        let kill = a.syscall_number("kill").expect("kill");
        let call = |nr, args| p.evaluate(a, &SeccompData::new(a, nr, args));
        assert_eq!(call(futex, [0, 128, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(call(futex, [0, 6, 0, 0, 0, 0]), Action::KillProcess);
        assert_eq!(call(futex, [0, 134, 0, 0, 0, 0]), Action::KillProcess);
        assert_eq!(call(kill, [42, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(call(kill, [43, 0, 0, 0, 0, 0]), Action::KillProcess);
        let e = err("futex: op & 1 == 2");
        assert!(e.message.contains("can never hold"), "{}", e.message);
    }

    #[test]
    fn review_findings_stay_fixed() {
        // A fallback that a later unconditional rule would make dead is an error.
        let e = err("read: fd == 0; errno 1\nread: allow");
        assert!(e.message.contains("could never apply"), "{}", e.message);
        let e = err("read: allow\nread: fd == 0; errno 1");
        assert!(e.message.contains("unconditional rule"), "{}", e.message);
        // Masked equality on a 32-bit parameter is judged on the low halves.
        parse("futex: op & 0xffffffff == -1").expect("holds for op == -1");
        // clone's flags and mmap's fd are read as 32 bits by the kernel.
        let e = err("clone: flags == 0x100000000");
        assert!(
            e.message.contains("does not fit 32-bit parameter flags"),
            "{}",
            e.message
        );
        // A mask too wide for a 32-bit parameter is named as the mask.
        let e = err("futex: op & 0x1ffffffff == 1");
        assert!(
            e.message.starts_with("mask 0x1ffffffff does not fit"),
            "{}",
            e.message
        );
        // The caret of an @include error points at the path.
        let e = err("@include   missing.policy");
        assert_eq!(e.column, 12);
        // prctl's later arguments are argN only.
        let e = err("prctl: arg2x == 1");
        assert!(e.message.contains("no parameter"), "{}", e.message);
        parse("prctl: option == PR_SET_NAME && arg1 == 0")
            .expect("arg1 is prctl's second argument");
    }

    #[test]
    fn conditional_statements_combine_in_order() {
        let p = parse(
            "prctl: arg0 == PR_SET_NAME\nprctl: arg0 == PR_GET_NAME\nprctl: arg0 == 4 => errno 1",
        )
        .expect("parses");
        assert_eq!(p.rules_for("prctl").expect("prctl").rules().len(), 3);
    }

    #[test]
    fn includes() {
        let sources = Mem(vec![
            ("a.policy", "@include b.policy\nread: 1"),
            ("b.policy", "write: 1"),
            ("loop1", "@include loop2"),
            ("loop2", "@include loop1"),
        ]);
        let p = parse_with(&sources, "a.policy", &Options::new(Arch::X86_64)).expect("parses");
        assert!(p.rules_for("write").is_some());
        let e = parse_with(&sources, "loop1", &Options::new(Arch::X86_64)).expect_err("cycle");
        assert!(
            e.0[0]
                .message
                .contains("include cycle: loop1 -> loop2 -> loop1"),
            "{}",
            e
        );
        let e = parse_with(&sources, "nope", &Options::new(Arch::X86_64)).expect_err("missing");
        assert!(e.0[0].message.contains("cannot find"));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for text in [
            "",
            ":",
            "{",
            "{}",
            "{read",
            "read",
            "read:",
            "read: (",
            "read: arg0 ==",
            "read: ~",
            "read: arg0 == (1",
            "@",
            "@include",
            "read: !!!!",
            "read: arg0 in",
            "\\",
            "é: allow",
            "read: arg0 == - ",
            "read: arg0 == -99999999999999999999",
            "read: errno",
            "read: allow allow",
            "read: arg0 == 1; ",
            "read: arg0 == 1 =>",
            "read: trap 70000",
        ] {
            let _ = parse(text);
        }
    }
}
