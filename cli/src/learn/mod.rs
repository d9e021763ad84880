//! `sandbox learn --output FILE [run options] -- PROG ARGS`: run the program as
//! `sandbox run` would — the same namespaces, root, Landlock, limits — but with a filter
//! that records instead of refusing, then write a profile that `sandbox run --profile
//! FILE` enforces ([`write`](mod@write)). See docs/sandbox-run.md, "Learn mode".
//!
//! The filter hands every call to the supervisor (user notification), which records
//! it ([`record`]) and lets it run (CONTINUE). Three calls are decided in the filter as
//! `sandbox run` decides them, so that the learned behaviour is the enforced one:
//! `sendmsg` without MSG_OOB runs (the payload hands over its listener with it before
//! anyone records), `clone3` and `openat2` get ENOSYS (libc falls back to `clone` and
//! `openat`, whose flags a filter can read), and the set-ID guard holds.
//!
//! Unless a profile gives binds, the program sees the system's folders read-only
//! (`/usr`, `/bin`, `/sbin`, `/lib*`, `/etc`, `/opt`, `/var`, where they exist): the
//! learned profile then binds only the folders it used.

pub mod record;
pub mod write;

use crate::run::RunArgs;
use clap::Args;
use record::Recorder;
use sandbox::policy::arch::Arch;
use sandbox::policy::Policy;
use std::path::PathBuf;

/// Folders the program sees while learning when no profile gives binds.
const LEARN_BINDS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/var",
];

/// `sandbox learn` options.
#[derive(Debug, Args)]
pub struct LearnArgs {
    /// Where to write the learned profile.
    #[arg(long, short)]
    pub output: PathBuf,
    /// The run, as for `sandbox run` (its --policy is not used: everything is recorded).
    #[command(flatten)]
    pub run: RunArgs,
}

/// The recording filter's policy: everything to the supervisor, but for the calls
/// decided as `sandbox run` decides them (see the module docs).
pub fn learning_policy() -> Result<Policy, String> {
    // The same lines the learned profile gets (one source: what is learned is what
    // will be enforced), with every other call handed to the supervisor.
    let text = format!("@default user-notify\n{}\n", write::ALWAYS.join("\n"));
    let sources = sandbox::policy::text::EmbeddedSources(&[]);
    let mut p = sandbox::policy::text::parse_str(
        "sandbox learn",
        &text,
        &sandbox::policy::text::Options::new(Arch::native()),
        &sources,
    )
    .map_err(|e| e.to_string())?;
    sandbox::policy::guards::refuse_setid_modes(&mut p).map_err(|e| e.to_string())?;
    Ok(p)
}

/// `sandbox learn`; the program's exit status (the profile is written whatever it is).
pub fn learn(args: LearnArgs) -> i32 {
    let mut run = match args.run.with_profile() {
        Ok(r) => r,
        Err(e) => return crate::run::fail(e),
    };
    if run.profile.is_none() {
        run.profile_ro = LEARN_BINDS
            .iter()
            .filter(|d| std::path::Path::new(d).exists())
            .map(|d| d.to_string())
            .collect();
    }
    let command = run.command.clone();
    let granted: Vec<PathBuf> = run
        .ro
        .iter()
        .chain(&run.rw)
        .map(|g| PathBuf::from(g.split_once(':').map_or(g.as_str(), |(p, _)| p)))
        .filter_map(|p| std::path::absolute(p).ok())
        .collect();
    let mut rec = Recorder::default();
    let code = crate::run::run_recording(run, &mut rec);
    let text = write::profile_text(&rec, Arch::native(), &command, &granted);
    if let Err(e) = std::fs::write(&args.output, text) {
        return crate::run::fail(format!(
            "{}: {}",
            args.output.display(),
            crate::words::io(&e)
        ));
    }
    eprintln!(
        "sandbox: learned {} syscalls and {} paths from {} calls; profile written to {}",
        rec.calls.len(),
        rec.paths.len(),
        rec.count,
        args.output.display()
    );
    code
}
