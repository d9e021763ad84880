//! Statements, directives and includes: a file read into a [`Policy`].

use super::*;

/// The lines a `sandbox run` profile adds to the language (read by the CLI before the
/// policy parser sees the text).
const PROFILE_LINES: &[&str] = &[
    "@ro",
    "@ro-if-exists",
    "@rw",
    "@env",
    "@limit",
    "@dev",
    "@proc",
    "@net",
];

pub(super) struct Parser<'s> {
    pub(super) options: &'s Options,
    pub(super) sources: &'s dyn Sources,
    pub(super) policy: Policy,
    pub(super) default: Option<(Action, String)>,
    /// Include stack (keys), for cycle detection.
    pub(super) stack: Vec<String>,
    /// Where each syscall got its unconditional rule.
    pub(super) unconditional: HashMap<&'static str, String>,
    pub(super) errors: Vec<ParseError>,
}

impl<'s> Parser<'s> {
    pub(super) fn new(options: &'s Options, sources: &'s dyn Sources) -> Parser<'s> {
        Parser {
            options,
            sources,
            // Replaced by `@default` or left as kill-process.
            policy: Policy {
                default: Action::KillProcess,
                syscalls: Default::default(),
                default_origin: Default::default(),
            },
            default: None,
            stack: Vec::new(),
            unconditional: HashMap::new(),
            errors: Vec::new(),
        }
    }

    pub(super) fn finish(self) -> Result<Policy, ParseErrors> {
        if self.errors.is_empty() {
            Ok(self.policy)
        } else {
            Err(ParseErrors(self.errors))
        }
    }

    pub(super) fn error(&mut self, file: &str, line: &Logical, at: usize, message: String) {
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

    pub(super) fn file(&mut self, key: String, display: String, text: &str, depth: usize) {
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

    pub(super) fn line(
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

    pub(super) fn directive(
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
                self.default = Some((action, here.clone()));
                self.policy.default = action;
                self.policy.default_origin = crate::policy::Origin::at(here);
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
            other => {
                Err((
                    at,
                    if PROFILE_LINES.contains(&other) {
                        format!(
                            "`{other}` is a profile line, not a policy directive: it belongs in a \
                         profile (`sandbox run --profile FILE`, docs/profiles.md), in the \
                         profile file itself (not an included one)"
                        )
                    } else {
                        format!("unknown directive `{other}` (expected @default, @include or @frequency)")
                    },
                ))
            }
        }
    }

    pub(super) fn statement(
        &mut self,
        display: &str,
        line: &Logical,
        c: &mut Cursor<'_>,
    ) -> PResult<()> {
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
            // `sys_read` is `read` (the kernel's function names, as the 2011
            // seccomp-filter proposal wrote them), when `sys_read` is not a name itself.
            let syscall = crate::policy::Syscall::new(&name)
                .or_else(|e| match name.strip_prefix("sys_") {
                    Some(plain) => crate::policy::Syscall::new(plain),
                    None => Err(e),
                })
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
            let here = crate::policy::Origin::at(location(display, line, at));
            if let Some(rule) = self
                .policy
                .syscalls
                .get_mut(&syscall)
                .and_then(|r| r.rules.last_mut())
            {
                rule.origin = here.clone();
            }
            if when == Expr::True {
                self.unconditional
                    .insert(syscall.name(), location(display, line, at));
            }
            if let Some(o) = otherwise {
                self.policy
                    .set_otherwise(syscall.name(), o)
                    .map_err(|e| (body_at, policy_message(e)))?;
                if let Some(rules) = self.policy.syscalls.get_mut(&syscall) {
                    rules.otherwise_origin = here;
                }
            }
        }
        Ok(())
    }

    /// Turn parameter names into indices for `syscall`, checking widths.
    pub(super) fn resolve(&self, syscall: &'static str, ast: &Ast) -> PResult<Expr> {
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

pub(super) fn location(display: &str, line: &Logical<'_>, at: usize) -> String {
    let (l, c) = line.position(at);
    format!("{display}:{l}:{c}")
}

pub(super) fn policy_message(e: PolicyError) -> String {
    e.to_string()
}
