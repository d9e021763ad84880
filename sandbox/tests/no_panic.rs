//! The parser and the compiler never panic, whatever the input: random bytes, random
//! token soup, and corpus policies with random edits.

use proptest::prelude::*;
use sandbox::bpf::compile;
use sandbox::policy::arch::Arch;
use sandbox::policy::text::{parse_str, EmbeddedSources, Options};

const TOKENS: &[&str] = &[
    "read",
    "write",
    "ioctl",
    "clone",
    ":",
    "{",
    "}",
    ",",
    ";",
    "=>",
    "(",
    ")",
    "||",
    "&&",
    "!",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&",
    "in",
    "|",
    "~",
    "-",
    "arg0",
    "arg5",
    "arg6",
    "fd",
    "cmd",
    "flags",
    "0",
    "1",
    "0x",
    "0xffffffffffffffff",
    "0x1ffffffffffffffff",
    "-1",
    "077",
    "09",
    "TCGETS",
    "PROT_READ",
    "NOPE",
    "allow",
    "errno",
    "return",
    "trap",
    "kill-process",
    "log",
    "user-notify",
    "trace",
    "kill",
    "@default",
    "@include",
    "@frequency",
    "x.policy",
    "\\\n",
    "\n",
    " ",
    "#",
    "é",
    "\0",
    "\t",
];

const INCLUDES: &[(&str, &str)] = &[
    ("x.policy", "read: 1\n@include x.policy\n"),
    ("y.policy", "write: arg0 == 1\n"),
];

fn check(text: &str) {
    for arch in Arch::ALL {
        if let Ok(p) = parse_str(
            "fuzz.policy",
            text,
            &Options::new(arch),
            &EmbeddedSources(INCLUDES),
        ) {
            let _ = compile(&p, arch);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(s in ".{0,200}") {
        check(&s);
    }

    #[test]
    fn token_soup(toks in prop::collection::vec(prop::sample::select(TOKENS), 0..60)) {
        check(&toks.join(" "));
        check(&toks.concat());
    }

    #[test]
    fn edited_corpus(file in 0usize..9, cut in any::<prop::sample::Index>(), len in 0usize..40, insert in prop::sample::select(TOKENS)) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/crosvm-x86_64");
        let mut files: Vec<_> = std::fs::read_dir(dir).expect("corpus").filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        let text = std::fs::read_to_string(&files[file % files.len()]).expect("read");
        let at = cut.index(text.len().max(1));
        let mut at = at.min(text.len());
        while !text.is_char_boundary(at) { at -= 1; }
        let mut end = (at + len).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let edited = format!("{}{}{}", &text[..at], insert, &text[end..]);
        check(&edited);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!(
        "read: {}arg0 == 1{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let r = parse_str(
        "deep",
        &deep,
        &Options::new(Arch::X86_64),
        &EmbeddedSources(&[]),
    );
    assert!(r.is_err());
    let bangs = format!("read: {}arg0 == 1", "!".repeat(100_000));
    assert!(parse_str(
        "deep",
        &bangs,
        &Options::new(Arch::X86_64),
        &EmbeddedSources(&[])
    )
    .is_err());
    let tildes = format!("read: arg0 == {}1", "~".repeat(100_000));
    assert!(parse_str(
        "deep",
        &tildes,
        &Options::new(Arch::X86_64),
        &EmbeddedSources(&[])
    )
    .is_err());
}

#[test]
fn self_include_is_a_cycle_error() {
    let r = parse_str(
        "top",
        "@include x.policy\n",
        &Options::new(Arch::X86_64),
        &EmbeddedSources(INCLUDES),
    );
    let e = r.expect_err("cycle");
    assert!(
        e.to_string()
            .contains("include cycle: x.policy -> x.policy"),
        "{e}"
    );
}
