//! Conditions: the expression grammar, parsed into a syntax tree.

use super::*;

/// One statement's condition, parameters still by name.
#[derive(Clone, Debug)]
pub(super) enum Ast {
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

pub(super) struct Cursor<'a> {
    pub(super) toks: &'a [Token],
    pub(super) pos: usize,
    pub(super) end: usize,
    pub(super) options: &'a Options,
}

pub(super) type PResult<T> = Result<T, (usize, String)>;

impl<'a> Cursor<'a> {
    pub(super) fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }
    pub(super) fn peek2(&self) -> Option<&'a Tok> {
        self.toks.get(self.pos + 1).map(|t| &t.tok)
    }
    pub(super) fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.at)
    }
    pub(super) fn bump(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.pos).map(|t| &t.tok);
        self.pos += 1;
        t
    }
    pub(super) fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }
    pub(super) fn eat(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    pub(super) fn expect(&mut self, p: &str, what: &str) -> PResult<()> {
        if self.eat(p) {
            Ok(())
        } else {
            Err((
                self.at(),
                format!("expected {what}, found {}", self.describe()),
            ))
        }
    }
    pub(super) fn describe(&self) -> String {
        match self.peek() {
            None => "end of line".into(),
            Some(Tok::Word(w)) => format!("`{w}`"),
            Some(Tok::Num(n)) => format!("`{n}`"),
            Some(Tok::Punct(p)) => format!("`{p}`"),
        }
    }
    pub(super) fn done(&self) -> bool {
        self.pos >= self.toks.len()
    }

    // expr := and ('||' and)*
    pub(super) fn expr(&mut self, depth: usize) -> PResult<Ast> {
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

    pub(super) fn and(&mut self, depth: usize) -> PResult<Ast> {
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

    pub(super) fn unary(&mut self, depth: usize) -> PResult<Ast> {
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

    pub(super) fn cond(&mut self) -> PResult<Ast> {
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
    pub(super) fn value(&mut self, depth: usize) -> PResult<u64> {
        let mut v = self.term(depth)?;
        while self.eat("|") {
            v |= self.term(depth)?;
        }
        Ok(v)
    }

    // term := '~' term | '-' NUMBER | '(' value ')' | NUMBER | NAME
    pub(super) fn term(&mut self, depth: usize) -> PResult<u64> {
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
    pub(super) fn action(&mut self) -> PResult<Action> {
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

pub(super) fn is_action_word(t: Option<&Tok>) -> bool {
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
